"""Names and version rules that the real `condor_annex` binary fixes (see annex-contract.md).

Nothing here is ours to rename: `condor_annex` looks these up by exact name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KEY_PAIR_NAME = "HTCondorAnnex-KeyPair"
CONNECTIVITY_FUNCTION_NAME = "HTCondorAnnex-CheckConnectivity"

# The four stacks `condor_annex -check-setup` looks for with DescribeStacks.
BUCKET_STACK = "HTCondorAnnex-ConfigurationBucket"
LAMBDA_STACK = "HTCondorAnnex-LambdaFunctions"
INSTANCE_PROFILE_STACK = "HTCondorAnnex-InstanceProfile"
SECURITY_GROUP_STACK = "HTCondorAnnex-SecurityGroup"

# The annex image's boot script finds its bucket by matching this against its role's policies.
BOOT_SCRIPT_BUCKET_REGEX = r"^arn:aws:s3:::[^/]*/config-\*\.tar\.gz"

# Default, and the only place a fresh install would put them (the guide's ~/.condor layout).
ACCESS_KEY_FILE = "publicKeyFile"
SECRET_KEY_FILE = "privateKeyFile"  # noqa: S105 - a file name, not a secret

ANNEX_TAG = "htcondor:AnnexName"

OLDEST_SUPPORTED = (8, 7, 1)
# 24.11 moved condor_annex behind `htcondor annex`; the next major is unknown to this program.
HPC_ANNEX_FROM = (24, 11, 0)
FIRST_UNSUPPORTED = (26, 0, 0)

VERSION_PATTERN = re.compile(r"([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{1,3})")


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
    def series(self) -> str:
        major, minor, _ = self.parts
        return f"{major}.{minor}"

    @property
    def uses_make_personal_from_tarball(self) -> bool:
        """9.0 replaced `condor_install --make-personal-condor` with this script."""
        return self.parts >= (9, 0, 0)

    @property
    def region_prefixed_knobs(self) -> bool:
        return self.parts >= (8, 7, 8)

    @property
    def writes_region_knob(self) -> bool:
        return self.parts >= (8, 9, 10)

    @property
    def hpc_annex(self) -> bool:
        """24.11+: the access point is `use feature:HPC_ANNEX` and `htcondor annex` runs condor_annex."""
        return self.parts >= HPC_ANNEX_FROM

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
            "https://research.cs.wisc.edu/htcondor/tarball/"
            f"{self.series}/{self.version}/release/condor-{self.version}-{{platform}}-stripped.tar.gz"
        )
