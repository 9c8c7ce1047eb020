"""The world an annex lives in, played on this machine: the user's machine behind its own link, AWS,
and the instances condor_annex starts, each in network namespaces of their own (tests/e2e/netns.py).

    machine (169.254.10.2) ---- internet ---- instance (169.254.20.2)
                                   |
                 AWS at its hostnames (169.254.99.1:443), the download site (169.254.99.2),
                 the metadata service (169.254.169.254)

- The machine: a real sshd in its namespace, which the program's steps reach as they reach any
  machine; the user's HTCondor runs there. Its /etc/hosts sends AWS's hostnames to AWS and its own
  name to its own address; its system trust store holds the test's CA (tests/e2e/aws_world.py).
- Behind a NAT (`nat=True`): the machine keeps its address, which the internet does not route to;
  it is reached at PUBLIC_NAT_ADDRESS, translated to it (with hairpin: the machine reaches itself
  at that address too, as condor_annex on it dials it), and what it sends out leaves from there.
- AWS: moto, with IAM enforcement on for everything after the deploy (tests/moto_iam.py), holding
  what the program's AWS side made (tests/moto_cloud.py). EC2 and EventBridge are played by threads
  here: an instance that appears in moto is booted in the instance's namespaces from the image the
  stack's own build steps made (tests/e2e/instance.py), and shut down when moto says it terminated;
  every rule aimed at a lease function fires every few seconds (AWS: every 5 minutes).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.authorization import disable_iam_authentication, enable_iam_authentication

from components.contract import ANNEX_TAG, CONNECTIVITY_FUNCTION_NAME, IMAGE_PLATFORM
from tests.e2e.aws_world import (
    AWS_ADDRESS,
    METADATA_ADDRESS,
    AwsEndpoint,
    EventBridge,
    Instance,
    MetadataService,
    Tls,
    connectivity_handler,
    make_tls,
    role_credentials,
    service_names,
)
from tests.e2e.instance import Booted, InstanceHost, admit, boot, build_image, shut_down, start_host, stop_host
from tests.e2e.machine import Machine, TarballServer, start_sshd
from tests.e2e.netns import Link, Network, exec_prefix, run_inside, write_etc
from tests.harness import ROOT
from tests.moto_cloud import MotoCloud, admin_session
from tests.moto_iam import enforce_per_resource

REAL_HTCONDOR = ROOT.parent / "shared" / "real-htcondor"
REAL_VERSIONS = ("24.0.23", "25.0.13")
MACHINE_PLATFORM = "x86_64_Debian12"
INTERNET, MACHINE, INSTANCE = "cai-internet", "cai-machine", "cai-instance"
MACHINE_LINK = Link(MACHINE, "169.254.10.1", "169.254.10.2")
INSTANCE_LINK = Link(INSTANCE, "169.254.20.1", "169.254.20.2")
DOWNLOAD_ADDRESS = "169.254.99.2"
PUBLIC_NAT_ADDRESS = "169.254.30.1"
REGIONS = ("us-east-1", "eu-west-2")
# EventBridge's rate(5 minutes), played faster.
RULE_EVERY_SECONDS = 3


def real_tarball(version: str) -> Path:
    path = REAL_HTCONDOR / f"condor-{version}-{MACHINE_PLATFORM}-stripped.tar.gz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the annex tests run the real HTCondor of ../shared/real-htcondor")
    return path


@dataclass
class AwsPlayers:
    """EC2's instance lifecycle and EventBridge's schedule, as threads beside moto."""

    world: World
    boot_region: str
    booted: dict[str, Booted] = field(default_factory=dict)
    image_documents: dict[str, str] = field(default_factory=dict)
    ingress: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    build_logs: dict[str, str] = field(default_factory=dict)
    terminated: set[str] = field(default_factory=set)
    booting: InstanceHost | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for loop in (self._ec2, self._eventbridge):
            self._threads.append(threading.Thread(target=self._guarded, args=(loop,), daemon=True))
            self._threads[-1].start()

    def stop(self) -> None:
        """Every instance host gone, one still booting too (ending it ends its boot, and the loop)."""
        self._stop.set()
        if self.booting is not None:
            stop_host(self.booting)
        for thread in self._threads:
            thread.join(timeout=60)
        for host in [self.booting, *(booted.host for booted in self.booted.values())]:
            if host is not None:
                stop_host(host)

    def logs(self) -> str:
        """What each booted instance said: its boot script, and the ends of its HTCondor logs."""
        said = []
        if self.booting is not None:
            found = self.booting.run("ps -ef; cat /etc/condor/config.d/49ec2-instance.config 2>&1").stdout
            said.append(f"--- booting:\n{found}")
        for identity, booted in self.booted.items():
            tails = booted.host.run("tail -n 25 /var/log/condor/MasterLog /var/log/condor/StartLog 2>&1").stdout
            said.append(f"--- {identity} boot:\n{booted.boot_log}\n--- {identity} logs:\n{tails}")
        return "\n".join(said) or "no instance booted"

    def _guarded(self, loop: Any) -> None:
        try:
            loop()
        except Exception as error:  # a player's death must fail the test, not pass silently
            self.failures.append(f"{loop.__name__}: {error!r}")

    def _ec2(self) -> None:
        ec2 = self.world.admin.client("ec2", region_name=self.boot_region)
        while not self._stop.wait(1):
            for reservation in ec2.describe_instances()["Reservations"]:
                for instance in reservation["Instances"]:
                    tags = {tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])}
                    identity, state = instance["InstanceId"], instance["State"]["Name"]
                    if ANNEX_TAG not in tags:
                        continue
                    if state in ("pending", "running") and identity not in self.booted and not self.booted:
                        self.booted[identity] = self._boot(instance)
                    elif (
                        state == "running" and identity in self.booted and self.booted[identity].host.asked_to_shut_down
                    ):
                        # Shut down from inside: condor_annex launched it to terminate then.
                        ec2.terminate_instances(InstanceIds=[identity])
                    elif state in ("shutting-down", "terminated") and identity in set(self.booted) - self.terminated:
                        self.terminated.add(identity)
                        shut_down(self.booted[identity])

    def _boot(self, instance: dict[str, Any]) -> Booted:
        """The instance comes up: its own image, its firewall, its metadata, then its units."""
        image = instance["ImageId"]
        host = self.booting = self.world.instance_host()
        self.build_logs[image] = "\n".join(build_image(host, self.image_documents[image]).values())
        admit(host, self.ingress)
        profile_arn = instance["IamInstanceProfile"]["Arn"]
        iam = self.world.admin.client("iam")
        role = iam.get_instance_profile(InstanceProfileName=profile_arn.rsplit("/", 1)[1])["InstanceProfile"]["Roles"][
            0
        ]
        self.world.metadata.instances[INSTANCE_LINK.host_address] = Instance(
            instance_id=instance["InstanceId"],
            region=self.boot_region,
            public_ip=INSTANCE_LINK.host_address,
            profile_arn=profile_arn,
            role_name=role["RoleName"],
            credentials=role_credentials(role["Arn"], instance["InstanceId"], self.boot_region),
        )
        return boot(host)

    def _eventbridge(self) -> None:
        while not self._stop.wait(RULE_EVERY_SECONDS):
            for region in REGIONS:
                events = self.world.admin.client("events", region_name=region)
                for rule in events.list_rules()["Rules"]:
                    targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
                    if any(":function:HTCondorAnnex-" in target["Arn"] for target in targets):
                        with contextlib.suppress(events.exceptions.ResourceNotFoundException):
                            self.world.events.fire(region, rule["Name"])


@dataclass
class World:
    network: Network
    tls: Tls
    aws: AwsEndpoint
    metadata: MetadataService
    machine: Machine
    tarballs: TarballServer
    workdir: Path
    mock: Any
    admin: boto3.Session = None  # type: ignore[assignment]
    events: EventBridge = None  # type: ignore[assignment]
    nat: bool = False

    def reset_aws(self) -> MotoCloud:
        """An empty account with an administrator; IAM enforcement on from here."""
        self.mock.reset()
        with disable_iam_authentication():
            self.admin = admin_session()
        self.events = EventBridge(self.admin)
        return MotoCloud(self.admin)

    def inventory(self) -> dict[str, Any]:
        """What the account holds, every kind of thing the program or an annex makes."""
        held: dict[str, Any] = {}
        iam = self.admin.client("iam")
        held["users"] = sorted(user["UserName"] for user in iam.list_users()["Users"])
        held["roles"] = sorted(role["RoleName"] for role in iam.list_roles()["Roles"])
        held["policies"] = sorted(policy["Arn"] for policy in iam.list_policies(Scope="Local")["Policies"])
        held["profiles"] = sorted(p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"])
        held["buckets"] = sorted(b["Name"] for b in self.admin.client("s3").list_buckets()["Buckets"])
        for region in REGIONS:
            ec2 = self.admin.client("ec2", region_name=region)
            held[f"{region} groups"] = sorted(
                group["GroupId"]
                for group in ec2.describe_security_groups()["SecurityGroups"]
                if group["GroupName"] != "default"
            )
            held[f"{region} key pairs"] = sorted(pair["KeyName"] for pair in ec2.describe_key_pairs()["KeyPairs"])
            held[f"{region} images"] = sorted(
                image["ImageId"] for image in ec2.describe_images(Owners=["self"])["Images"]
            )
            held[f"{region} snapshots"] = sorted(
                s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
            )
            held[f"{region} live instances"] = sorted(
                instance["InstanceId"]
                for reservation in ec2.describe_instances()["Reservations"]
                for instance in reservation["Instances"]
                if instance["State"]["Name"] not in ("terminated", "shutting-down")
            )
            held[f"{region} functions"] = sorted(
                f["FunctionName"] for f in self.admin.client("lambda", region_name=region).list_functions()["Functions"]
            )
            held[f"{region} log groups"] = sorted(
                g["logGroupName"]
                for g in self.admin.client("logs", region_name=region).describe_log_groups()["logGroups"]
            )
            held[f"{region} rules"] = sorted(
                r["Name"] for r in self.admin.client("events", region_name=region).list_rules()["Rules"]
            )
            held[f"{region} stacks"] = sorted(
                s["StackName"]
                for s in self.admin.client("cloudformation", region_name=region).describe_stacks()["Stacks"]
                if s["StackStatus"] != "DELETE_COMPLETE"
            )
        return held

    @property
    def public_name(self) -> str:
        return PUBLIC_NAT_ADDRESS if self.nat else MACHINE_LINK.host_address

    def set_nat(self, nat: bool) -> None:
        """The machine reached at its own address, or through a NAT at PUBLIC_NAT_ADDRESS."""
        iptables = [*exec_prefix(INTERNET), "iptables"]
        for table in ("nat", "filter"):
            subprocess.run([*iptables, "-t", table, "-F"], check=True)
        self.nat = nat
        subprocess.run(
            ["ip", "-n", INTERNET, "route", "del", f"{PUBLIC_NAT_ADDRESS}/32"], capture_output=True, check=False
        )
        if not nat:
            return
        private = MACHINE_LINK.host_address
        # The internet routes the public address to the NAT, which is the machine's link here.
        subprocess.run(["ip", "-n", INTERNET, "route", "add", f"{PUBLIC_NAT_ADDRESS}/32", "via", private], check=True)
        for chain in ("PREROUTING", "OUTPUT"):
            subprocess.run(
                [
                    *iptables,
                    "-t",
                    "nat",
                    "-A",
                    chain,
                    "-d",
                    PUBLIC_NAT_ADDRESS,
                    "-j",
                    "DNAT",
                    "--to-destination",
                    private,
                ],
                check=True,
            )
        subprocess.run(
            [
                *iptables,
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-s",
                private,
                "-j",
                "SNAT",
                "--to-source",
                PUBLIC_NAT_ADDRESS,
            ],
            check=True,
        )
        # Only what came in through the NAT, or answers what the machine sent out, reaches its address.
        subprocess.run(
            [*iptables, "-A", "FORWARD", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
            check=True,
        )
        subprocess.run(
            [*iptables, "-A", "FORWARD", "-d", private, "-m", "conntrack", "!", "--ctstate", "DNAT", "-j", "DROP"],
            check=True,
        )

    def write_hosts(self, buckets: list[str]) -> None:
        """AWS's hostnames, the buckets' among them, for the machine and for instances booted later."""
        self.instance_hosts = write_machine_etc(self.tls, buckets)

    def instance_host(self) -> InstanceHost:
        return start_host(
            INSTANCE,
            INSTANCE_LINK.host_address,
            self.workdir,
            self.instance_hosts,
            str(Path(sys.executable).parent),
            self.tls.ca_pem,
        )


def write_machine_etc(tls: Tls, buckets: list[str]) -> dict[str, str]:
    aws = {name: AWS_ADDRESS for name in service_names(list(REGIONS), buckets)}
    write_etc(MACHINE, {**aws, socket.gethostname(): MACHINE_LINK.host_address}, tls.ca_pem)
    return aws


@contextlib.contextmanager
def annex_world(workdir: Path) -> Iterator[World]:
    """Every namespace, server and player the annex tests need, torn down after."""
    network = Network(INTERNET, [MACHINE_LINK, INSTANCE_LINK])
    network.create()
    for address in (AWS_ADDRESS, METADATA_ADDRESS, DOWNLOAD_ADDRESS):
        network.add_address(INTERNET, address)
    mock = mock_aws()
    mock.start()
    sshd = aws = metadata = None
    with pytest.MonkeyPatch.context() as patch:
        enforce_per_resource(patch)
        try:
            tls = make_tls(
                workdir / "tls",
                [
                    *service_names(list(REGIONS), []),
                    *(f"*.s3.{r}.amazonaws.com" for r in REGIONS),
                    "*.s3.amazonaws.com",
                ],
            )
            aws = AwsEndpoint(INTERNET, tls, {CONNECTIVITY_FUNCTION_NAME: connectivity_handler(INTERNET)})
            aws.start()
            metadata = MetadataService(INTERNET)
            tarballs = TarballServer()
            for version in REAL_VERSIONS:
                body = real_tarball(version).read_bytes()
                for platform in (MACHINE_PLATFORM, IMAGE_PLATFORM):
                    tarballs.files[f"/condor-{version}-{platform}-stripped.tar.gz"] = body
            tarballs.start(run_inside(INTERNET, lambda: socket.create_server((DOWNLOAD_ADDRESS, 80))))
            # Before sshd starts: `ip netns exec` binds the namespace's /etc files as it starts it.
            write_machine_etc(tls, [])
            sshd, machine = start_sshd(workdir / "sshd", namespace=MACHINE)
            world = World(network, tls, aws, metadata, machine, tarballs, workdir, mock)
            with enable_iam_authentication():
                yield world
        finally:
            if sshd is not None:
                sshd.terminate()
                sshd.wait(timeout=10)
            for server in (aws, metadata):
                if server is not None:
                    server.stop()
            mock.stop()
            network.destroy()


def sha256_of(version: str) -> str:
    return hashlib.sha256(real_tarball(version).read_bytes()).hexdigest()


def registered_ingress(program: Any) -> list[dict[str, Any]]:
    return [r.inputs for r in program.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")]


def image_documents(program: Any) -> dict[str, str]:
    """Each built image's id, and the component document its build ran."""
    documents = {}
    for image in program.of_type("aws:imagebuilder/image:Image"):
        region_prefix = image.name
        component = program.named(f"{region_prefix}-htcondor")
        documents[image.outputs["outputResources"][0]["amis"][0]["image"]] = component.inputs["data"]
    return documents


def wait_for(what: str, check: Any, timeout: float, every: float = 2, why: Any = None) -> Any:
    """check()'s first true answer within timeout; else a failure saying what `why()` says."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:.0f}s" + (f":\n{why()}" if why else ""))
        time.sleep(every)


def json_lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]
