"""Names and version rules that the real `condor_annex` binary fixes (see annex-contract.md).

Nothing here is ours to rename: `condor_annex` looks these up by exact name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

KEY_PAIR_NAME = "HTCondorAnnex-KeyPair"
CONNECTIVITY_FUNCTION_NAME = "HTCondorAnnex-CheckConnectivity"

# The four stacks `condor_annex -check-setup` looks for with DescribeStacks.
BUCKET_STACK = "HTCondorAnnex-ConfigurationBucket"
LAMBDA_STACK = "HTCondorAnnex-LambdaFunctions"
INSTANCE_PROFILE_STACK = "HTCondorAnnex-InstanceProfile"
SECURITY_GROUP_STACK = "HTCondorAnnex-SecurityGroup"
STACK_NAMES = (BUCKET_STACK, LAMBDA_STACK, INSTANCE_PROFILE_STACK, SECURITY_GROUP_STACK)

# The annex image's boot script finds its bucket by matching this against its role's policies.
BOOT_SCRIPT_BUCKET_REGEX = r"^arn:aws:s3:::[^/]*/config-\*\.tar\.gz"

# Default, and the only place a fresh install would put them (the guide's ~/.condor layout).
ACCESS_KEY_FILE = "publicKeyFile"
SECRET_KEY_FILE = "privateKeyFile"  # noqa: S105 - a file name, not a secret

ANNEX_TAG = "htcondor:AnnexName"

# An annex instance's HTCondor listens on its shared port, which condor_annex never sets (annex.cpp
# writes only COLLECTOR_HOST): SHARED_PORT_PORT's default, COLLECTOR_PORT's, 9618, whatever port
# this pool's collector has. The access point connects in to it (claims up to 24.0; from 24.11 the
# activation after the startd's direct attach).
ANNEX_INSTANCE_PORT = 9618

# Annex images are built on Amazon Linux 2023, AWS's public SSM parameter for its current image (the
# Image Builder recipe resolves it at each build), with the release's tarball for that platform,
# which HTCondor builds for 10.5.0 to 25.7 (build_platforms.json).
IMAGE_BASE_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
IMAGE_PLATFORM = "x86_64_AmazonLinux2023"

# The Linux platforms HTCondor builds each release for, which name its tarballs: nmi_tools/
# nmi-build-platforms at every release tag from 8.7.1 (written by `python -m tests.build_platforms`).
BUILD_PLATFORMS: dict[tuple[int, int, int], list[str]] = {
    tuple(int(part) for part in version.split(".")): platforms  # type: ignore[misc]
    for version, platforms in json.loads((Path(__file__).parent / "build_platforms.json").read_text()).items()
}

OLDEST_SUPPORTED = (8, 7, 1)
# 24.11 moved condor_annex behind `htcondor annex`; the next major is unknown to this program.
HPC_ANNEX_FROM = (24, 11, 0)
FIRST_UNSUPPORTED = (26, 0, 0)

VERSION_PATTERN = re.compile(r"([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{1,3})")

# Every release HTCondor tagged from 8.7.1 (tags `V8_7_1` ... `v25.13.2` in htcondor/htcondor, read
# 2026-11-30; the newest tag is of 2026-08-19), series -> patch numbers. The gaps are releases
# HTCondor skipped or cancelled: 24.0.24 (commit c6abf9d11d, "HTCONDOR-3843: Cancel 24.0.24
# release"), 25.0.4, 23.0.5 and more. A version newer than any here may have come out since.
RELEASES_KNOWN_ON = "2026-08-19"
RELEASES = {
    "8.7": "1-10",
    "8.8": "0-17",
    "8.9": "0-13",
    "9.0": "0-19",
    "9.1": "0-3",
    "9.2": "0",
    "9.3": "0-2",
    "9.4": "0-1",
    "9.5": "0-4",
    "9.6": "0",
    "9.7": "0-1",
    "9.8": "0-1",
    "9.9": "0-1",
    "9.10": "0-1",
    "9.11": "0-2",
    "9.12": "0",
    "10.0": "0-9",
    "10.1": "0-3",
    "10.2": "0-5",
    "10.3": "0-1",
    "10.4": "0-3",
    "10.5": "0-1",
    "10.6": "0",
    "10.7": "0-1",
    "10.8": "0",
    "10.9": "0",
    "23.0": "0-4,6,8,10,12,14-22,24-28",
    "23.1": "0",
    "23.2": "0",
    "23.3": "0-1",
    "23.4": "0",
    "23.5": "2",
    "23.6": "1-2",
    "23.7": "2",
    "23.8": "1",
    "23.9": "6",
    "23.10": "1-2,18-22,24-29",
    "24.0": "1-23",
    "24.1": "1",
    "24.2": "1-2",
    "24.3": "0",
    "24.4": "0",
    "24.5": "1-2",
    "24.6": "1",
    "24.7": "3",
    "24.8": "1",
    "24.9": "2",
    "24.10": "2-3",
    "24.11": "2",
    "24.12": "4,13-23",
    "25.0": "1-3,5-13",
    "25.1": "0",
    "25.2": "1",
    "25.3": "1",
    "25.4": "0",
    "25.5": "1",
    "25.6": "1",
    "25.7": "2",
    "25.8": "2",
    "25.10": "1",
    "25.11": "0-1",
    "25.12": "2",
    "25.13": "2",
}
# HTCondor's download site since September 2025 (condor_remote_cluster and the install docs at
# v25.0.13); its layout below tarball/ is the old site's.
DOWNLOAD_SITE = "https://htcss-downloads.chtc.wisc.edu/tarball/"


def _patches(ranges: str) -> set[int]:
    patches: set[int] = set()
    for part in ranges.split(","):
        first, _, last = part.partition("-")
        patches.update(range(int(first), int(last or first) + 1))
    return patches


RELEASED = {tuple(map(int, series.split("."))): _patches(ranges) for series, ranges in RELEASES.items()}
# The series that could still get a release after the list was made: the LTS line in support and
# the newest feature series. Every other series has ended (24.0's next release was cancelled).
OPEN_SERIES = {(25, 0), (25, 13)}


def bucket_config_objects(bucket_arn_or_name: str) -> str:
    """The resource string for the annex config tarballs, exactly as the boot script expects."""
    return f"arn:aws:s3:::{bucket_arn_or_name}/config-*.tar.gz"


def safe_region(region: str) -> str:
    """condor_annex's knob prefix for a region: every char outside [A-Za-z0-9_./] becomes `_`."""
    return re.sub(r"[^A-Za-z0-9_./]", "_", region)


@dataclass(frozen=True)
class CondorRelease:
    """What changes between the HTCondor versions this program supports."""

    version: str

    @property
    def parts(self) -> tuple[int, int, int]:
        match = VERSION_PATTERN.fullmatch(self.version)
        if not match:
            raise ValueError(f"not an HTCondor version: {self.version!r}")
        major, minor, patch = (int(part) for part in match.groups())
        return major, minor, patch

    @property
    def released(self) -> bool | None:
        """True if HTCondor released it, False if it never did (a gap, or a series that never
        existed), None if it is newer than every release this program knows of."""
        major, minor, patch = self.parts
        patches = RELEASED.get((major, minor))
        if patches is not None:
            maybe_since = patch > max(patches) and (major, minor) in OPEN_SERIES
            return patch in patches or (None if maybe_since else False)
        return None if (major, minor) > max(RELEASED) else False

    @property
    def newest_known_in_series(self) -> str | None:
        major, minor, _ = self.parts
        patches = RELEASED.get((major, minor))
        return f"{major}.{minor}.{max(patches)}" if patches else None

    @property
    def download_series(self) -> str:
        """The directory of the release on the download site: 25.0 for the LTS line, 25.x for the
        feature releases (condor_remote_cluster's rule from 10.0); 8.7 before 9.0."""
        major, minor, _ = self.parts
        if major < 9 or minor == 0:
            return f"{major}.{minor}"
        return f"{major}.x"

    @property
    def uses_make_personal_from_tarball(self) -> bool:
        """9.0 replaced `condor_install --make-personal-condor` with this script."""
        return self.parts >= (9, 0, 0)

    @property
    def installer(self) -> str:
        return "make-personal-from-tarball" if self.uses_make_personal_from_tarball else "condor_install"

    @property
    def region_prefixed_knobs(self) -> bool:
        return self.parts >= (8, 7, 8)

    @property
    def writes_region_knob(self) -> bool:
        return self.parts >= (8, 9, 10)

    @property
    def signs_tokens_with_pool_password(self) -> bool:
        """9.0 to 24.0: SEC_TOKEN_POOL_SIGNING_KEY_FILE defaults to $(SEC_PASSWORD_FILE)
        (param_info.in at V9_0_0 and v24.0.23), and condor_annex copies that file into every annex
        tarball: whoever holds one could mint tokens for any identity of the pool."""
        return (9, 0, 0) <= self.parts < HPC_ANNEX_FROM

    @property
    def read_authentication_methods(self) -> str:
        """How a reader may authenticate: FS for the machine's own users, PASSWORD or IDTOKENS for
        annexes (a 24.11+ annex looks the schedd up in the AP collector with its token). IDTOKENS
        is a method from 8.9.7 (condor_secman.cpp at V8_9_7); none of them works from afar without
        the pool's password or a token the pool signed."""
        return "FS, IDTOKENS, PASSWORD" if self.parts >= (8, 9, 7) else "FS, PASSWORD"

    @property
    def hpc_annex(self) -> bool:
        """24.11+: the access point is `use feature:HPC_ANNEX` and `htcondor annex` runs condor_annex."""
        return self.parts >= HPC_ANNEX_FROM

    @property
    def annex_collector_knob(self) -> str:
        """Where condor_annex (the ANNEX subsystem) sends annex instances, and what it asks itself:
        the collector up to 24.0, the AP collector from 24.11 (annex.cpp at v24.0.23, v25.0.13)."""
        return "ANNEX_COLLECTOR" if self.hpc_annex else "COLLECTOR_HOST"

    @property
    def build_platforms(self) -> list[str]:
        """The Linux platforms HTCondor builds this release for: at its tag, or for a release newer
        than the table knows, at the newest tag before it; none for one older than them all."""
        known = [version for version in BUILD_PLATFORMS if version <= self.parts]
        return BUILD_PLATFORMS[max(known)] if known else []

    @property
    def has_image_tarball(self) -> bool:
        """HTCondor builds this release for the annex image's platform."""
        return IMAGE_PLATFORM in self.build_platforms

    @property
    def pool_password_file(self) -> str:
        """Where the pool password goes, relative to LOCAL_DIR: from 24.11 the pool's signing key
        (SEC_PASSWORD_FILE's default, `passwords.d/POOL`), before that the guide's own file."""
        return "passwords.d/POOL" if self.hpc_annex else "condor_pool_password"

    def check_setup_command(self, region: str) -> str:
        """The user's own check of one region's setup, as plain words."""
        if self.hpc_annex:
            return f"htcondor annex checksetup --aws-region {region}"
        if self.region_prefixed_knobs:
            return f"condor_annex -check-setup -aws-region {region}"
        return "condor_annex -check-setup"

    def annex_commands(
        self, region: str, first_region: str, instance_type: str | None, annex_name_prefix: str = ""
    ) -> dict[str, str]:
        """How a user starts, feeds, watches and ends an annex in a region with this release, HTCondor's
        own commands (condor.sh sourced); ANNEX_NAME stands for the annex's name, after the user's prefix."""
        name = f"{annex_name_prefix}ANNEX_NAME"
        if self.hpc_annex:
            # `htcondor annex create` has no region option and passes none to condor_annex, which
            # then takes ANNEX_DEFAULT_AWS_REGION; the environment's setting wins over the file's.
            other_region = "" if region == first_region else f"_CONDOR_ANNEX_DEFAULT_AWS_REGION={region} "
            return {
                "submit": f"htcondor job submit --annex-name {name} sleep.submit",
                "start": f"{other_region}htcondor annex create {name} {instance_type or 'm5.large'}@aws-ec2",
                "watch": f"htcondor annex status {name}",
                "end": f"htcondor annex shutdown {name}",
            }
        region_option = f"-aws-region {region} " if self.region_prefixed_knobs else ""
        return {
            "start": f"condor_annex {region_option}-count 1 -annex-name {name}",
            "submit": "condor_submit sleep.submit",
            "watch": f"condor_annex {region_option}-annex-name {name} -status; condor_status -annex {name}",
            "end": f"condor_off -annex {name}",
        }

    def key_pair_file(self, region: str) -> str:
        if self.region_prefixed_knobs:
            return f"{KEY_PAIR_NAME}.{region}.pem"
        return f"{KEY_PAIR_NAME}.pem"

    @property
    def config_file(self) -> str:
        """Our own config file, relative to the install's LOCAL_DIR.

        9.0+ tarball installs read `local/config.d/` (after 00-personal-condor) and ignore
        `condor_config.local`; 8.7.x reads only `condor_config.local`, which gets one include line.
        """
        if self.uses_make_personal_from_tarball:
            return "config.d/50-condor-annex"
        return "condor_annex.config"

    @property
    def default_tarball_url(self) -> str:
        """The release's URL with `{platform}` left for the machine to fill in (`x86_64_Ubuntu22`)."""
        return (
            f"{DOWNLOAD_SITE}{self.download_series}/{self.version}/release/"
            f"condor-{self.version}-{{platform}}-stripped.tar.gz"
        )
