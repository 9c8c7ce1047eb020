"""The tarball each machine gets: for every release line, every Linux platform HTCondor builds it for
(nmi_tools/nmi-build-platforms at the line's tags, components/build_platforms.json) is the name
lib.sh's detect_platform picks on a machine of that platform, read from its /etc/os-release (bound
over this machine's in a mount namespace of the test's own) and `uname -m`."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from components.contract import BUILD_PLATFORMS, CondorRelease
from components.machine import script_text

# How a distribution's /etc/os-release says what it is: ID and VERSION_ID, for a platform's name.
OS_RELEASE = {
    "Ubuntu": ("ubuntu", "{major}.04"),
    "Debian": ("debian", "{major}"),
    "RedHat": ("rhel", "{major}.9"),
    "CentOS": ("centos", "{major}"),
    "Rocky": ("rocky", "{major}.9"),
    "AlmaLinux": ("almalinux", "{major}.4"),
    "SL": ("scientific", "{major}.9"),
    "AmazonLinux": ("amzn", "{major}"),
    "Fedora": ("fedora", "{major}"),
    "openSUSE": ("opensuse-leap", "{major}.6"),
}
UNAME = {"x86_64": "x86_64", "aarch64": "aarch64", "ppc64le": "ppc64le", "x86": "i686"}
# Built for x86-64-v2 CPUs beside the x86_64 build of the same release: never the one picked.
ALTERNATIVE_BUILDS = re.compile(r"^x86_64_v2_")


def line_of(version: tuple[int, int, int]) -> str:
    return CondorRelease(".".join(map(str, version))).download_series


def every_line_and_platform() -> list[tuple[str, str]]:
    """(a release of the line that lists it, platform), one for each platform each line lists."""
    found: dict[tuple[str, str], str] = {}
    for version, platforms in BUILD_PLATFORMS.items():
        for platform in platforms:
            if not ALTERNATIVE_BUILDS.match(platform):
                found.setdefault((line_of(version), platform), ".".join(map(str, version)))
    return sorted((release, platform) for (_, platform), release in found.items())


def os_release(platform: str) -> tuple[str, str]:
    arch, distro = platform.rsplit("_", 1)
    if distro.startswith("SLES"):
        major, service_pack = re.fullmatch(r"SLES(\d+)SP(\d+)", distro).groups()
        return UNAME[arch], f'ID="sles"\nVERSION_ID="{major}.{service_pack}"\n'
    name, major = re.fullmatch(r"([A-Za-z]+?)(\d+)", distro).groups()
    distro_id, version_id = OS_RELEASE[name]
    return UNAME[arch], f'ID="{distro_id}"\nVERSION_ID="{version_id.format(major=major)}"\n'


def on_a_machine_of(
    os_release_text: str, script: str, path: str = "/usr/bin:/bin", pid_namespace: bool = False
) -> subprocess.CompletedProcess:
    """A script run by bash as a non-root user (the steps refuse root), with PATH `path`, on a
    machine whose /etc/os-release says `os_release_text` (bound over this one's in a mount namespace;
    with a PID namespace and /proc of its own, if asked, where nothing else runs)."""
    with tempfile.TemporaryDirectory() as directory:
        os_release = Path(directory) / "os-release"
        os_release.write_text(os_release_text)
        os_release.chmod(0o644)
        return subprocess.run(
            [
                "unshare",
                "--mount",
                *(["--pid", "--fork", "--mount-proc"] if pid_namespace else []),
                "sh",
                "-c",
                f"mount --bind {os_release} /etc/os-release && "
                f"exec setpriv --reuid=65534 --regid=65534 --clear-groups env -i PATH={path} HOME=/tmp bash -s",
            ],
            input=script,
            capture_output=True,
            text=True,
            check=False,
        )


def detected(release: str, machine: str, os_release_text: str) -> subprocess.CompletedProcess:
    """detect_platform as the preflight runs it, on a machine whose `uname -m` says `machine`."""
    values = {"CONDOR_VERSION": release, "PLATFORMS": " ".join(CondorRelease(release).build_platforms)}
    script = f"uname() {{ echo {machine}; }}\n{script_text('lib.sh', 'preflight', values)}\ndetect_platform\n"
    return on_a_machine_of(os_release_text, script)


@pytest.mark.parametrize(("release", "platform"), every_line_and_platform())
def test_a_machine_of_each_platform_a_line_is_built_for_gets_that_tarball(release: str, platform: str):
    machine, text = os_release(platform)
    result = detected(release, machine, text)
    assert result.returncode == 0 and result.stdout == platform, result.stderr


@pytest.mark.parametrize(
    ("release", "distro", "expected"),
    [
        # RHEL itself has no build of its own from 8.8: it gets its rebuild's, whichever the release names.
        ("8.7.3", 'ID="rhel"\nVERSION_ID="7.9"\n', "x86_64_RedHat7"),
        ("8.8.17", 'ID="rhel"\nVERSION_ID="7.9"\n', "x86_64_CentOS7"),
        ("8.9.13", 'ID="rhel"\nVERSION_ID="8.4"\n', "x86_64_CentOS8"),
        ("9.0.19", 'ID="rhel"\nVERSION_ID="8.9"\n', "x86_64_Rocky8"),
        ("9.0.19", 'ID="almalinux"\nVERSION_ID="8.9"\n', "x86_64_Rocky8"),
        ("10.0.9", 'ID="ol"\nVERSION_ID="8.9"\n', "x86_64_AlmaLinux8"),
        ("23.0.28", 'ID="centos"\nVERSION_ID="7"\n', "x86_64_CentOS7"),
        ("25.0.13", 'ID="rocky"\nVERSION_ID="9.5"\n', "x86_64_AlmaLinux9"),
    ],
)
def test_the_rhel_family_gets_the_build_its_release_names(release: str, distro: str, expected: str):
    result = detected(release, "x86_64", distro)
    assert result.returncode == 0 and result.stdout == expected, result.stderr


def test_a_machine_the_release_is_not_built_for_is_told_which_it_is_and_what_is_built():
    result = detected("10.0.9", "x86_64", 'ID="debian"\nVERSION_ID="12"\n')
    assert result.returncode != 0
    assert "HTCondor 10.0.9 is not built for this machine (debian 12, x86_64)" in result.stderr
    assert "x86_64_Debian11" in result.stderr and "set condorTarballUrl" in result.stderr


def test_a_release_newer_than_the_table_takes_the_newest_before_it():
    assert CondorRelease("25.0.14").build_platforms == CondorRelease("25.0.13").build_platforms
    assert CondorRelease("24.0.24").build_platforms == CondorRelease("24.0.23").build_platforms
