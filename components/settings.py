"""The only reader of `pulumi.Config`: every value checked before any resource is registered.

Values that reach a shell script or an HTCondor config file are held to strict character sets
here, so that no config value can add a shell command or a config line later on.
"""

from __future__ import annotations

import base64
import difflib
import ipaddress
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime.config import CONFIG, get_config_env, is_config_secret

from components.annex_guard import ON_DESTROY_CHOICES
from components.contract import (
    FIRST_UNSUPPORTED,
    IMAGE_PLATFORM,
    OLDEST_SUPPORTED,
    RELEASES_KNOWN_ON,
    VERSION_PATTERN,
    CondorRelease,
)

PROJECT = "condor-annex"
DEFAULT_CONDOR_VERSION = "25.0.13"

THIS_MACHINE = ("localhost", "127.0.0.1", "::1")
HOST_ACCEPTED = "a DNS name or IPv4 address of the Linux machine, or localhost, nothing else"
HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
UNIX_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
# `~/` or absolute; no `..`, spaces, quotes or shell metacharacters.
MACHINE_PATH = re.compile(r"^(~/|/)[A-Za-z0-9._/-]*$")
TARBALL_URL = re.compile(r"^https?://[A-Za-z0-9._~:/%+=,@-]+(\{platform\}[A-Za-z0-9._~:/%+=,@-]*)?$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
# A host key as users paste it: `<type> <base64>`, a .pub line with its comment, or ssh-keyscan's
# `<host> <type> <base64>`.
HOST_KEY = re.compile(
    r"(?:(?P<host>[^\s]+) )?(?P<type>ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)) "
    r"(?P<key>[A-Za-z0-9+/]+={0,2})(?: (?P<comment>[\x20-\x7e]*))?"
)
HOST_KEY_FORMS = (
    "one public host key: '<type> <base64>', a .pub line ('<type> <base64> <comment>') "
    "or an ssh-keyscan line ('<host> <type> <base64>')"
)
# Every key this program reads in its own namespace; any other is a typo the user should hear of.
KNOWN_KEYS = (
    "regions",
    "host",
    "sshUser",
    "sshPort",
    "sshPrivateKey",
    "sshPrivateKeyPassphrase",
    "sshHostKey",
    "sshAcceptAnyHostKey",
    "publicName",
    "machineGone",
    "condorVersion",
    "condorTarballUrl",
    "condorTarballSha256",
    "installDir",
    "collectorPort",
    "poolPassword",
    "sshIngressCidrs",
    "condorIngressCidrs",
    "annexImageId",
    "annexImageTarballSha256",
    "annexInstanceType",
    "annexesOnDestroy",
    "logRetentionDays",
    "annexKeyGeneration",
    "joinStack",
    "annexNamePrefix",
)
# The stack's aws:* settings that reach each region's provider.
AWS_KEYS_READ = ("region", "profile")
PRIVATE_KEY = re.compile(r"^-----BEGIN ([A-Z]+ )?PRIVATE KEY-----\n.+\n-----END ([A-Z]+ )?PRIVATE KEY-----\n?$", re.S)
AMI = re.compile(r"^ami-[0-9a-f]{8,17}$")
INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
REGION = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]")
# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
# IAM attaches at most 10 managed policies to a user (IAM quotas, "Managed policies attached to an
# IAM user", default 10), and the annex user has one per region.
MAX_REGIONS = 10
# Raising it rotates the annex user's access key; any whole number that only ever grows will do.
MAX_KEY_GENERATION = 9999
DEFAULT_ANNEX_INSTANCE_TYPE = "m5.large"
MAX_POOL_PASSWORD = 255  # condor_store_cred's MAX_PASSWORD_LENGTH, in bytes
# Every annex tarball carries the pool password, and up to 24.0 it is also the key tokens are signed
# with (SEC_TOKEN_POOL_SIGNING_KEY_FILE defaults to SEC_PASSWORD_FILE): not something to guess.
MIN_POOL_PASSWORD = 16
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
# condor_annex names an annex's lease rule after its first 27 characters (annex-create.cpp at
# v24.0.23): the prefix leaves 7 of them at least.
ANNEX_NAME_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,19}")
# <project>/<stack>, each as Pulumi allows its names, as the stack's tags spell them.
JOIN_STACK = re.compile(r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}")


class ConfigError(pulumi.RunError):
    """One or more config values are wrong; the message names each key, value and what is accepted.
    A RunError, so the CLI prints the message alone, without a Python traceback."""


@dataclass(frozen=True)
class Settings:
    """Everything the program needs, validated; secrets are secret Outputs."""

    # The first is the default region (ANNEX_DEFAULT_AWS_REGION) and holds the account-wide resources.
    regions: list[str]
    # Explicit providers do not read the stack's aws:* config; the profile is the one users set there.
    aws_profile: str | None
    host: str
    # host names this machine: the steps run here, as the user running pulumi, without SSH.
    runs_locally: bool
    ssh_user: str
    ssh_port: int
    ssh_private_key: pulumi.Output[str] | None
    # For a passphrase-protected sshPrivateKey.
    ssh_private_key_passphrase: pulumi.Output[str] | None
    # Pinned by the user; when None, the user's ~/.ssh/known_hosts says which key (components/host_key.py).
    ssh_host_key: str | None
    # A throwaway machine: the steps accept any host key.
    ssh_accept_any_host_key: bool
    # The name annex instances call this machine back at; None leaves it to HTCondor ($(FULL_HOSTNAME)).
    public_name: str | None
    release: CondorRelease
    tarball_url: str
    tarball_sha256: str | None
    install_dir: str
    collector_port: int
    pool_password: pulumi.Output[str]
    ssh_ingress_cidrs: list[str]
    condor_ingress_cidrs: list[str]
    annex_image_id: str | None
    # The release tarball the annex image is built from (the pool's release, for the image's
    # platform), when no annex_image_id is given and HTCondor builds the release for that platform.
    annex_image_tarball_url: str | None
    annex_image_tarball_sha256: str | None
    annex_instance_type: str | None
    log_retention_days: int
    # The machine is gone for good: its steps are forgotten on destroy instead of undone there.
    machine_gone: bool = False
    # Which access key the annex user has: a new number makes a new key and retires the old one.
    annex_key_generation: int = 1
    # The <project>/<stack> whose setup this stack joins; None: this stack makes the region's setup.
    join_stack: str | None = None
    # What destroy does about annexes still running: refuse, end or leave.
    annexes_on_destroy: str = "refuse"
    # What every annex name of this user begins with; the key and lease functions touch only the
    # lease rules whose names do ("": any rule of the account).
    annex_name_prefix: str = ""


class _Reader:
    """Collects every problem so the user sees them all at once, not one per `pulumi up`."""

    def __init__(self, config: pulumi.Config, aws_config: pulumi.Config) -> None:
        self.config = config
        self.aws_config = aws_config
        self.problems: list[str] = []

    def fail(self, key: str, value: Any, accepted: str, secret: bool = False) -> None:
        shown = "[secret]" if secret else json.dumps(value) if not isinstance(value, str) else repr(value)
        self.problems.append(f"{PROJECT}:{key} = {shown}: {accepted}")

    def value(self, key: str) -> str | None:
        """The key's value, None when unset: Pulumi.yaml gives optional keys the default "", which the
        CLI requires to treat them as optional."""
        value = self.config.get(key)
        return None if value == "" else value

    def text(
        self, key: str, pattern: re.Pattern[str], accepted: str, default: str | None = None, secret: bool = False
    ) -> str | None:
        value = self.value(key)
        if value is None:
            return default
        if not pattern.fullmatch(value):
            self.fail(key, value, accepted, secret)
            return default
        return value

    def required(self, key: str, value: str | None, accepted: str) -> str:
        if value is None:
            self.problems.append(f"{PROJECT}:{key} is required: {accepted}")
            return ""
        return value

    def whole_number(self, key: str, default: int, lowest: int, highest: int, why: str = "") -> int:
        raw = self.config.get(key)
        if raw is None:
            return default
        if not re.fullmatch(r"[0-9]{1,5}", raw) or not lowest <= int(raw) <= highest:
            self.fail(key, raw, f"a whole number from {lowest} to {highest}{why}")
            return default
        return int(raw)

    def port(self, key: str, default: int, lowest: int) -> int:
        return self.whole_number(key, default, lowest, 65535)

    def cidrs(self, key: str, default: list[str] | None, why_required: str, allow_empty: bool) -> list[str]:
        raw = self.config.get(key)
        if raw is None:
            if default is None:
                self.problems.append(f"{PROJECT}:{key} is required: {why_required}")
                return []
            return default
        try:
            values = json.loads(raw)
        except json.JSONDecodeError:
            values = None
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            self.fail(key, raw, 'a list of IPv4 CIDR blocks, such as ["203.0.113.7/32"]')
            return []
        accepted: list[str] = []
        for value in values:
            try:
                network = ipaddress.IPv4Network(value, strict=True)
            except ValueError as error:
                self.fail(key, value, f"not an IPv4 CIDR block with its host bits clear ({error})")
                continue
            accepted.append(str(network))
        if not values and not allow_empty:
            self.fail(key, values, "at least one CIDR block: annex instances must admit the Linux machine")
        return accepted


def _check_version(reader: _Reader, version: str) -> CondorRelease:
    lowest = ".".join(map(str, OLDEST_SUPPORTED))
    highest = ".".join(map(str, FIRST_UNSUPPORTED))
    if not VERSION_PATTERN.fullmatch(version):
        reader.fail("condorVersion", version, "an HTCondor version such as 24.0.23 or 8.7.3")
        return CondorRelease(DEFAULT_CONDOR_VERSION)
    release = CondorRelease(version)
    if release.parts < OLDEST_SUPPORTED:
        reader.fail("condorVersion", version, f"condor_annex exists from {lowest}")
    elif release.parts >= FIRST_UNSUPPORTED:
        reader.fail(
            "condorVersion", version, f"this program knows HTCondor up to (not including) {highest}, the next major"
        )
    elif release.released is False:
        newest = release.newest_known_in_series
        reader.fail(
            "condorVersion",
            version,
            "a version HTCondor released; it never released this one"
            + (f" (the newest of its series is {newest})" if newest else ""),
        )
    elif release.released is None:
        # Released after the list was made, or never: the preflight step asks the download site.
        pulumi.log.warn(
            f"{PROJECT}:condorVersion = {version!r} is newer than every HTCondor release this program knows "
            f"(to {RELEASES_KNOWN_ON}); the machine's preflight step checks that its tarball exists"
        )
    return release


def _region_problem(region: str) -> str | None:
    """What is wrong with a region name, or None. Only the `aws` partition can host an annex: the
    annex image's boot script finds its bucket by matching `arn:aws:s3:::` (BOOT_SCRIPT_BUCKET_REGEX),
    which GovCloud's and China's ARNs (`arn:aws-us-gov:`, `arn:aws-cn:`) never match, and condor_annex
    reaches a region at `<service>.<region>.amazonaws.com` (annex.cpp), which China's are not."""
    if not REGION.fullmatch(region):
        return "an AWS region name such as us-east-1"
    if region.startswith("cn-") or "-gov-" in region or "-iso" in region:
        return (
            "a region of the standard `aws` partition: the annex image's boot script only finds its "
            "configuration through an arn:aws:s3::: ARN, so annexes cannot work in GovCloud, China or ISO regions"
        )
    return None


def _regions(reader: _Reader, environ: Callable[[str], str | None], release: CondorRelease) -> list[str]:
    """`regions` when set, else the one region the AWS provider would use."""
    raw = reader.config.get("regions")
    if raw is None:
        region = reader.aws_config.get("region") or environ("AWS_REGION") or environ("AWS_DEFAULT_REGION")
        if region is None:
            reader.problems.append(
                f"aws:region is required (or {PROJECT}:regions): the AWS region for the annex, such as us-east-1"
            )
            return [""]
        problem = _region_problem(region)
        if problem:
            reader.problems.append(f"aws:region = {region!r}: {problem}")
        return [region]
    try:
        regions = json.loads(raw)
    except json.JSONDecodeError:
        regions = None
    if not isinstance(regions, list) or not regions or not all(isinstance(region, str) for region in regions):
        reader.fail("regions", raw, 'a non-empty list of AWS region names, such as ["us-east-1", "eu-west-2"]')
        return [""]
    for region in regions:
        problem = _region_problem(region)
        if problem:
            reader.fail("regions", region, problem)
    if len(regions) > MAX_REGIONS:
        reader.fail(
            "regions",
            regions,
            f"at most {MAX_REGIONS} regions: the annex user holds one managed policy per region, and IAM "
            f"attaches at most {MAX_REGIONS} to a user",
        )
    repeated = sorted({region for region in regions if regions.count(region) > 1})
    if repeated:
        reader.fail("regions", repeated, "each region once")
    if len(regions) > 1 and not release.region_prefixed_knobs:
        reader.fail(
            "regions",
            regions,
            f"HTCondor {release.version} writes its annex knobs without a region prefix, so it can set up "
            "exactly one region (8.7.8 and later can set up several)",
        )
    return regions


def _host_key(reader: _Reader) -> str | None:
    """The key as pulumi-command's host_key wants it: `<type> <base64>`, its blob checked."""
    value = reader.value("sshHostKey")
    if value is None:
        return None
    match = HOST_KEY.fullmatch(value)
    if match:
        fields = _ssh_fields(match["key"])
        if fields and fields[0] == match["type"].encode() and len(fields) == (2 if "ed25519" in match["type"] else 3):
            return f"{match['type']} {match['key']}"
    reader.fail("sshHostKey", value, HOST_KEY_FORMS)
    return None


def _boolean(reader: _Reader, key: str) -> bool:
    value = reader.config.get(key) or "false"
    if value not in ("true", "false"):
        reader.fail(key, value, "true or false")
    return value == "true"


def _ssh_fields(key: str) -> list[bytes] | None:
    """The length-prefixed fields of an SSH public key blob, or None when it is not one (cut short)."""
    try:
        blob = base64.b64decode(key, validate=True)
    except ValueError:
        return None
    fields = []
    while blob:
        size = int.from_bytes(blob[:4], "big")
        if len(blob) < 4 + size:
            return None
        fields.append(blob[4 : 4 + size])
        blob = blob[4 + size :]
    return fields


def _unknown_keys(reader: _Reader, keys: Iterable[str]) -> None:
    for full_key in sorted(keys):
        namespace, _, key = full_key.partition(":")
        if namespace == PROJECT and key not in KNOWN_KEYS:
            nearest = difflib.get_close_matches(key, KNOWN_KEYS, n=1, cutoff=0.5)
            hint = f"did you mean {PROJECT}:{nearest[0]}?" if nearest else f"known keys: {', '.join(KNOWN_KEYS)}"
            reader.problems.append(f"{full_key} is not a key this program reads: {hint}")
        elif namespace == "aws" and key not in AWS_KEYS_READ:
            # Each region's provider is explicit, and explicit providers ignore the stack's aws:* config.
            reader.problems.append(
                f"{full_key} is set, but this program makes every region's AWS provider itself and passes "
                f"on only {' and '.join(f'aws:{k}' for k in AWS_KEYS_READ)}: use the AWS_* environment "
                "variables or a profile for anything else"
            )


def _all_config_keys() -> Iterable[str]:
    return {**get_config_env(), **CONFIG.get()}.keys()


def _default_ingress(host: str) -> list[str] | None:
    """The Linux machine is the only peer annex instances must admit, so its own /32 when known."""
    try:
        return [str(ipaddress.IPv4Network(f"{ipaddress.IPv4Address(host)}/32"))]
    except ValueError:
        return None


def _annex_image_tarball(reader: _Reader, release: CondorRelease, tarball_url: str, image_id: str | None) -> str | None:
    """The tarball the annex image is built from: the pool's URL for the image's platform; None
    when the user gives an image, or when HTCondor builds none for that platform (before 10.5.0, from 25.8)."""
    if image_id:
        return None
    if not release.has_image_tarball:
        pulumi.log.warn(
            f"{PROJECT}:annexImageId is unset and HTCondor {release.version} has no {IMAGE_PLATFORM} tarball "
            "(HTCondor builds one for 10.5.0 to 25.7), so no annex image is built: condor_annex falls back to "
            "HTCondor's own images of 2019-2020, which may no longer exist; set annexImageId to an image with this "
            "release (see the README)"
        )
        return None
    if "{platform}" not in tarball_url:
        reader.fail(
            "condorTarballUrl",
            tarball_url,
            "a URL with {platform} in it, so the annex image can take the release's "
            f"{IMAGE_PLATFORM} tarball; or set annexImageId to an image you made",
        )
        return None
    return tarball_url.replace("{platform}", IMAGE_PLATFORM)


def read_settings(
    config: pulumi.Config | None = None,
    aws_config: pulumi.Config | None = None,
    environ: Callable[[str], str | None] = os.environ.get,
    is_secret: Callable[[str], bool] = is_config_secret,
    config_keys: Callable[[], Iterable[str]] = _all_config_keys,
) -> Settings:
    """Read and validate the stack's config; raise ConfigError naming every bad key."""
    reader = _Reader(config or pulumi.Config(PROJECT), aws_config or pulumi.Config("aws"))
    _unknown_keys(reader, config_keys())

    runs_locally = reader.config.get("host") in THIS_MACHINE
    host = reader.required(
        "host",
        reader.config.get("host") if runs_locally else reader.text("host", HOSTNAME, HOST_ACCEPTED),
        "the public DNS name or IPv4 address of the Linux machine that runs the personal HTCondor, "
        "or localhost to run on this machine",
    )
    accept_any_host_key = _boolean(reader, "sshAcceptAnyHostKey")
    if runs_locally:
        for key in ("sshUser", "sshPrivateKey", "sshPrivateKeyPassphrase", "sshHostKey", "sshAcceptAnyHostKey"):
            if reader.value(key) not in (None, "false"):
                reader.problems.append(
                    f"{PROJECT}:{key} is set, but host is {host}: the steps run on this machine as the user "
                    "running pulumi, without SSH; remove it"
                )
        ssh_user = ""
    else:
        ssh_user = reader.required(
            "sshUser",
            reader.text("sshUser", UNIX_USER, "a Unix user name (lower case letters, digits, _ . -)"),
            "the (non-root) account on the Linux machine that will own the personal HTCondor",
        )
    if ssh_user == "root":
        reader.fail("sshUser", ssh_user, "a non-root account: HTCondor's personal install refuses to run as root")

    private_key_text = (
        None
        if runs_locally
        else reader.text(
            "sshPrivateKey", PRIVATE_KEY, "a PEM or OpenSSH private key (-----BEGIN ... PRIVATE KEY-----)", secret=True
        )
    )
    if private_key_text and not is_secret(f"{PROJECT}:sshPrivateKey"):
        reader.fail(
            "sshPrivateKey",
            private_key_text,
            "set with `pulumi config set --secret sshPrivateKey`, not in plain text",
            secret=True,
        )
    passphrase = None if runs_locally else reader.value("sshPrivateKeyPassphrase")
    if passphrase is not None:
        if not is_secret(f"{PROJECT}:sshPrivateKeyPassphrase"):
            reader.fail(
                "sshPrivateKeyPassphrase",
                passphrase,
                "set with `pulumi config set --secret sshPrivateKeyPassphrase`, not in plain text",
                secret=True,
            )
        elif not private_key_text:
            reader.fail(
                "sshPrivateKeyPassphrase",
                passphrase,
                "the passphrase of sshPrivateKey, which is unset (a key in your SSH agent needs none here)",
                secret=True,
            )
    version = reader.config.get("condorVersion") or DEFAULT_CONDOR_VERSION
    release = _check_version(reader, version)
    regions = _regions(reader, environ, release)

    tarball_url = reader.text(
        "condorTarballUrl",
        TARBALL_URL,
        "an http(s) URL of a release tarball, optionally with {platform}; no quotes, spaces or $",
        default=release.default_tarball_url,
    )
    install_dir = reader.text(
        "installDir",
        MACHINE_PATH,
        "an absolute path or one under ~/ made of letters, digits and . _ - /",
        default=f"~/condor-{release.version}",
    )
    if install_dir and ("/../" in f"{install_dir}/" or install_dir.rstrip("/") in ("~", "")):
        reader.fail(
            "installDir", install_dir, "a directory of its own below your home, such as ~/condor-24.0.23 (no ..)"
        )

    pool_password = reader.config.get("poolPassword")
    if pool_password is None or pool_password == "":
        reader.problems.append(
            f"{PROJECT}:poolPassword is required: set it with `pulumi config set --secret poolPassword`"
        )
    elif CONTROL_CHARACTER.search(pool_password):
        # condor_store_cred's prompt ends at a newline, aborts at ^C and treats backspace as an edit.
        reader.fail("poolPassword", pool_password, "one line of printable text (no control characters)", secret=True)
    elif len(pool_password.encode()) > MAX_POOL_PASSWORD:
        reader.fail(
            "poolPassword", pool_password, f"at most {MAX_POOL_PASSWORD} bytes (condor_store_cred's limit)", secret=True
        )
    elif len(pool_password) < MIN_POOL_PASSWORD:
        reader.fail(
            "poolPassword",
            pool_password,
            f"at least {MIN_POOL_PASSWORD} characters: every daemon and annex of the pool proves itself with it "
            "(`openssl rand -base64 24` makes one)",
            secret=True,
        )

    public_name = reader.text(
        "publicName",
        HOSTNAME,
        "the DNS name or IPv4 address annex instances reach this machine at",
        default=None if runs_locally else host,
    )
    if runs_locally and public_name is None:
        pulumi.log.warn(
            f"host is {host} and {PROJECT}:publicName is unset: annex instances will call this machine back at "
            "the name HTCondor finds for it ($(FULL_HOSTNAME)); set publicName if that is not its public name"
        )
    why_cidrs = (
        f"host is {host}, which is not the address AWS sees, so list this machine's public address as a /32"
        if runs_locally and public_name is None
        else f"{public_name} is a DNS name, so list the Linux machine's public address as a /32"
    ) + ' (or ["0.0.0.0/0"] to admit everyone, as condor_annex -setup did)'
    default_ingress = _default_ingress(public_name) if public_name else None
    retention_raw = reader.config.get("logRetentionDays")
    retention = 14
    if retention_raw is not None:
        if re.fullmatch(r"[0-9]{1,4}", retention_raw) and int(retention_raw) in LOG_RETENTION_DAYS:
            retention = int(retention_raw)
        else:
            reader.fail("logRetentionDays", retention_raw, f"one of {', '.join(map(str, LOG_RETENTION_DAYS))}")

    join_stack = reader.text(
        "joinStack", JOIN_STACK, "<project>/<stack> of the stack whose setup to join, as its tags name it"
    )
    if join_stack == f"{pulumi.get_project()}/{pulumi.get_stack()}":
        reader.fail("joinStack", join_stack, "another stack than this one")

    annex_image_id = reader.text("annexImageId", AMI, "an AMI id such as ami-0123456789abcdef0")
    annex_image_tarball_url = _annex_image_tarball(
        reader, release, tarball_url or release.default_tarball_url, annex_image_id
    )
    # condor_annex's own default, m4.large, is a generation older than anything Amazon Linux 2023
    # is tested on; the image this program builds gets a current one.
    annex_instance_type = reader.text("annexInstanceType", INSTANCE_TYPE, "an EC2 instance type such as m5.large") or (
        DEFAULT_ANNEX_INSTANCE_TYPE if annex_image_tarball_url else None
    )
    ssh_host_key = None if runs_locally else _host_key(reader)
    if ssh_host_key and accept_any_host_key:
        reader.problems.append(
            f"{PROJECT}:sshAcceptAnyHostKey is true and {PROJECT}:sshHostKey pins a key: keep one of them"
        )

    settings = Settings(
        regions=regions,
        aws_profile=reader.aws_config.get("profile"),
        host=host,
        runs_locally=runs_locally,
        ssh_user=ssh_user,
        ssh_port=reader.port("sshPort", 22, 1),
        ssh_private_key=pulumi.Output.secret(private_key_text) if private_key_text else None,
        ssh_private_key_passphrase=pulumi.Output.secret(passphrase) if passphrase else None,
        ssh_host_key=ssh_host_key,
        ssh_accept_any_host_key=accept_any_host_key and not runs_locally,
        public_name=public_name,
        release=release,
        tarball_url=tarball_url or release.default_tarball_url,
        tarball_sha256=reader.text("condorTarballSha256", SHA256, "64 lower-case hex digits (sha256sum's output)"),
        install_dir=(install_dir or "").rstrip("/"),
        collector_port=reader.port("collectorPort", 9618, 1024),
        pool_password=pulumi.Output.secret(pool_password or ""),
        ssh_ingress_cidrs=reader.cidrs(
            "sshIngressCidrs", default_ingress, why_cidrs + "; [] for none", allow_empty=True
        ),
        condor_ingress_cidrs=reader.cidrs("condorIngressCidrs", default_ingress, why_cidrs, allow_empty=False),
        annex_image_id=annex_image_id,
        annex_image_tarball_url=annex_image_tarball_url,
        annex_image_tarball_sha256=reader.text(
            "annexImageTarballSha256", SHA256, "64 lower-case hex digits (sha256sum's output)"
        ),
        annex_instance_type=annex_instance_type,
        log_retention_days=retention,
        machine_gone=_boolean(reader, "machineGone"),
        annex_key_generation=reader.whole_number(
            "annexKeyGeneration", 1, 1, MAX_KEY_GENERATION, "; raise it by one to rotate the annex user's key"
        ),
        join_stack=join_stack,
        annexes_on_destroy=reader.text(
            "annexesOnDestroy",
            re.compile("|".join(ON_DESTROY_CHOICES)),
            "refuse (destroy deletes nothing while an annex runs), end (destroy ends them first) or leave",
            default="refuse",
        )
        or "refuse",
        annex_name_prefix=reader.text(
            "annexNamePrefix",
            ANNEX_NAME_PREFIX,
            "1 to 20 letters, digits, '-' or '_', beginning with a letter or digit, such as your user name and '-'",
        )
        or "",
    )
    if reader.problems:
        raise ConfigError("invalid stack configuration:\n  " + "\n  ".join(reader.problems))
    return settings
