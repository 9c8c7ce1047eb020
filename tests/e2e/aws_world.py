"""AWS as the annex test meets it: moto at AWS's hostnames over TLS, in the namespace that plays the
internet, with the instance metadata service and EventBridge's schedule played beside it.

What each piece was checked against:
- moto's server answers condor_annex's GAHP (the real 24.0.23 and 25.0.13) at the hostnames it dials
  (`<service>.<region>.amazonaws.com`, S3 at `<bucket>.s3.<region>.amazonaws.com`, IAM at
  `iam.amazonaws.com`), with a certificate of a CA the namespaces trust, as they trust AWS's.
- A Lambda Invoke is answered here, by the project's own handler for the function named, as Lambda
  runs it: the payload in, the handler's JSON out, status 200. moto would answer condor_annex's
  Invoke, sent with `Content-Type: application/x-amz-json-1.1` (as AWS accepts it), with a bare 404.
  The connectivity check runs in the internet's namespace, so it dials the pool as AWS would.
- The metadata service answers IMDSv2 only (a token from `PUT /latest/api/token` on every request,
  as Amazon Linux 2023's images require), in the form of EC2's documentation: `iam/info` and the
  identity document pretty-printed with ` : ` (HTCondor's boot script splits `iam/info` on spaces
  and takes the third field), credentials of the instance profile's role from STS.
- EventBridge: a rule's schedule is played by `fire`, which hands each target's constant input to
  the handler of the lease function it names, under that function's role's credentials and
  environment, as Lambda would run it.
"""

from __future__ import annotations

import contextlib
import datetime
import http.server
import json
import os
import re
import secrets
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import connectivity
import lease
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from moto.server import DomainDispatcherApplication, create_backend_app
from moto.sts.models import sts_backends
from werkzeug.serving import make_server

from tests.e2e.netns import run_inside

METADATA_ADDRESS = "169.254.169.254"
# Where AWS's hostnames point in every namespace: an address of the internet's own, on its loopback.
AWS_ADDRESS = "169.254.99.1"
INVOKE_PATH = re.compile(r"/2015-03-31/functions/([^/]+)/invocations")
LEASE_HANDLERS = {"HTCondorAnnex-odiLease": lease.odi_handler, "HTCondorAnnex-sfrLease": lease.sfr_handler}


def service_names(regions: list[str], buckets: list[str]) -> list[str]:
    """The hostnames condor_annex, the AWS CLI and boto3 dial for these regions and buckets."""
    names = ["iam.amazonaws.com", "sts.amazonaws.com", "s3.amazonaws.com"]
    for region in regions:
        names += [
            f"{service}.{region}.amazonaws.com"
            for service in ("ec2", "events", "lambda", "s3", "cloudformation", "sts", "logs")
        ]
        names += [f"{bucket}.s3.{region}.amazonaws.com" for bucket in buckets]
    names += [f"{bucket}.s3.amazonaws.com" for bucket in buckets]
    return names


@dataclass(frozen=True)
class Tls:
    ca_pem: bytes
    cert_file: Path
    key_file: Path


def make_tls(workdir: Path, names: list[str]) -> Tls:
    """A CA, and a certificate it signs for every name (a day's validity)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "condor-annex test CA for AWS hostnames")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    workdir.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = workdir / "aws.pem", workdir / "aws.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Tls(ca.public_bytes(serialization.Encoding.PEM), cert_file, key_file)


@dataclass
class Call:
    """One request AWS got: from where, with which access key, to which service and operation."""

    client: str
    access_key: str
    host: str
    operation: str


def _operation(environ: dict[str, Any]) -> str:
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1]
    query = environ.get("QUERY_STRING", "")
    found = re.search(r"(?:^|&)Action=([A-Za-z]+)", query)
    return found.group(1) if found else f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}"


class AwsEndpoint:
    """moto's server over TLS on AWS_ADDRESS:443 in the internet's namespace, every service at once."""

    def __init__(self, namespace: str, tls: Tls, handlers: dict[str, Callable[[dict[str, Any]], Any]]) -> None:
        self.namespace = namespace
        self.handlers = handlers
        self.calls: list[Call] = []
        self.invocations: list[tuple[str, dict[str, Any], Any]] = []
        moto = DomainDispatcherApplication(create_backend_app)

        def app(environ: dict[str, Any], start_response: Callable) -> Any:
            credential = re.search(r"Credential=([A-Z0-9]+)/", environ.get("HTTP_AUTHORIZATION", ""))
            body = b""
            if environ["REQUEST_METHOD"] == "POST":
                body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
                environ["wsgi.input"] = _Replay(body)
            operation = _operation(environ) if environ["REQUEST_METHOD"] != "POST" else _post_operation(environ, body)
            self.calls.append(
                Call(
                    environ.get("REMOTE_ADDR", ""),
                    credential.group(1) if credential else "",
                    environ.get("HTTP_HOST", ""),
                    operation,
                )
            )
            invoked = INVOKE_PATH.fullmatch(environ["PATH_INFO"])
            if invoked and environ["REQUEST_METHOD"] == "POST" and invoked.group(1).rsplit(":", 1)[-1] in self.handlers:
                return self._invoke(invoked.group(1).rsplit(":", 1)[-1], body, start_response)
            return moto(environ, start_response)

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls.cert_file, tls.key_file)
        self.listener = run_inside(namespace, lambda: socket.create_server((AWS_ADDRESS, 443), backlog=64))
        self.server = make_server(AWS_ADDRESS, 443, app, threaded=True, ssl_context=context, fd=self.listener.fileno())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _invoke(self, function: str, body: bytes, start_response: Callable) -> list[bytes]:
        event = json.loads(body or b"{}")
        result = self.handlers[function](event)
        self.invocations.append((function, event, result))
        payload = json.dumps(result).encode()
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(payload))),
                ("X-Amz-Executed-Version", "$LATEST"),
            ],
        )
        return [payload]

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.listener.close()

    def calls_with(self, access_key: str) -> list[Call]:
        return [call for call in self.calls if call.access_key == access_key]


class _Replay:
    """A request body read once for the log, readable again by moto."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.offset = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.body) if size is None or size < 0 else self.offset + size
        chunk = self.body[self.offset : end]
        self.offset += len(chunk)
        return chunk

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)


def _post_operation(environ: dict[str, Any], body: bytes) -> str:
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1]
    found = re.search(rb"(?:^|&)Action=([A-Za-z]+)", body)
    return found.group(1).decode() if found else f"POST {environ['PATH_INFO']}"


def connectivity_handler(internet: str) -> Callable[[dict[str, Any]], Any]:
    """HTCondorAnnex-CheckConnectivity as Lambda runs it: from AWS's side of the network."""
    return lambda event: run_inside(internet, lambda: connectivity.handler(event, None))


@dataclass
class Instance:
    """What the metadata service knows of one instance, found by the address it asks from."""

    instance_id: str
    region: str
    public_ip: str
    profile_arn: str
    role_name: str
    credentials: dict[str, str]


class MetadataService:
    """EC2's instance metadata service at 169.254.169.254, IMDSv2 only."""

    def __init__(self, namespace: str) -> None:
        self.instances: dict[str, Instance] = {}
        self.tokens: set[str] = set()
        self.requests: list[tuple[str, str, int]] = []
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                if self.path != "/latest/api/token" or not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                    self.answer(400, "")
                    return
                token = secrets.token_urlsafe(32)
                service.tokens.add(token)
                self.answer(200, token)

            def do_GET(self) -> None:
                instance = service.instances.get(self.client_address[0])
                if self.headers.get("X-aws-ec2-metadata-token") not in service.tokens:
                    self.answer(401, "")
                elif instance is None:
                    self.answer(404, "")
                else:
                    text = service.answer(instance, self.path)
                    self.answer(404 if text is None else 200, text or "")

            def answer(self, status: int, text: str) -> None:
                service.requests.append((self.command, self.path, status))
                body = text.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        listener = run_inside(namespace, lambda: socket.create_server((METADATA_ADDRESS, 80)))
        self.server = http.server.ThreadingHTTPServer((METADATA_ADDRESS, 80), Handler, bind_and_activate=False)
        self.server.socket.close()
        self.server.socket = listener
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def answer(instance: Instance, path: str) -> str | None:
        def document(values: dict[str, Any]) -> str:
            return json.dumps(values, indent=2, separators=(",", " : "))

        credentials = instance.credentials
        return {
            "/latest/meta-data/instance-id": instance.instance_id,
            "/latest/meta-data/public-ipv4": instance.public_ip,
            "/latest/meta-data/placement/region": instance.region,
            "/latest/dynamic/instance-identity/document": document(
                {"instanceId": instance.instance_id, "region": instance.region, "privateIp": instance.public_ip}
            ),
            "/latest/meta-data/iam/info": document(
                {"Code": "Success", "InstanceProfileArn": instance.profile_arn, "InstanceProfileId": "AIPAEXAMPLE"}
            ),
            "/latest/meta-data/iam/security-credentials/": instance.role_name,
            f"/latest/meta-data/iam/security-credentials/{instance.role_name}": document(
                {
                    "Code": "Success",
                    "Type": "AWS-HMAC",
                    "AccessKeyId": credentials["AccessKeyId"],
                    "SecretAccessKey": credentials["SecretAccessKey"],
                    "Token": credentials["SessionToken"],
                    "Expiration": credentials["Expiration"],
                }
            ),
        }.get(path)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.socket.close()


def role_credentials(role_arn: str, session: str, region: str = "us-east-1") -> dict[str, str]:
    """A session of a role a service assumes (EC2 for an instance profile, Lambda for a function),
    made in moto's STS directly: moto's AssumeRole, with IAM enforcement on, fails on a trust policy
    whose principal is a service (its principal check expects an `AWS` principal), and no test
    caller can be that service anyway."""
    account = role_arn.split(":")[4]
    found = sts_backends[account]["aws"].assume_role(
        region_name=region, role_session_name=session, role_arn=role_arn, policy="", duration=3600, external_id=""
    )
    return {
        "AccessKeyId": found.access_key_id,
        "SecretAccessKey": found.secret_access_key,
        "SessionToken": found.session_token,
        "Expiration": found.expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


@contextlib.contextmanager
def as_lambda(credentials: dict[str, str], region: str, environment: dict[str, str]) -> Iterator[None]:
    """This process's AWS credentials and environment, for a while, as Lambda gives a function."""
    values = {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
        "AWS_DEFAULT_REGION": region,
        **environment,
    }
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    # boto3's default session keeps the credentials it first found; the function's own are new.
    boto3.DEFAULT_SESSION = None
    try:
        yield
    finally:
        boto3.DEFAULT_SESSION = None
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class EventBridge:
    """Fires a rule's schedule now: each target's input to its lease function, as Lambda runs it."""

    admin: boto3.Session
    fired: list[tuple[str, dict[str, Any], Any]] = field(default_factory=list)

    def fire(self, region: str, rule: str) -> list[Any]:
        events = self.admin.client("events", region_name=region)
        functions = self.admin.client("lambda", region_name=region)
        results = []
        for target in events.list_targets_by_rule(Rule=rule)["Targets"]:
            name = target["Arn"].rsplit(":", 1)[-1]
            configuration = functions.get_function(FunctionName=name)["Configuration"]
            credentials = role_credentials(configuration["Role"], name, region)
            event = json.loads(target["Input"])
            with as_lambda(credentials, region, configuration.get("Environment", {}).get("Variables", {})):
                result = LEASE_HANDLERS[name](event, None)
            self.fired.append((rule, event, result))
            results.append(result)
        return results
