"""What the preflight asks a machine to install, named as its own distribution names the package:
the keeper's tools and a cron daemon to run it (Amazon Linux and RHEL have cronie, not cron)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.contract import CondorRelease
from components.machine import render
from tests.components.test_build_platforms import on_a_machine_of

AMAZON_LINUX = 'ID="amzn"\nID_LIKE="centos rhel fedora"\nVERSION_ID="2023"\n'
ROCKY = 'ID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.5"\n'
DEBIAN = 'ID=debian\nVERSION_ID="12"\n'
OPENSUSE = 'ID="opensuse-leap"\nID_LIKE="suse opensuse"\nVERSION_ID="15.6"\n'


@pytest.fixture(scope="module")
def bare_bin() -> Iterator[str]:
    """/usr/bin and /bin without crontab and pgrep: a minimal image."""
    with tempfile.TemporaryDirectory() as directory:
        Path(directory).chmod(0o755)
        for source in (Path("/usr/bin"), Path("/bin")):
            for tool in source.iterdir():
                if tool.name not in ("crontab", "pgrep") and not (Path(directory) / tool.name).exists():
                    (Path(directory) / tool.name).symlink_to(tool)
        yield directory


def preflight(release: str = "25.0.13") -> str:
    values = {
        "CONDOR_VERSION": release,
        "TARBALL_URL": "http://127.0.0.1:9/condor-{platform}.tar.gz",
        "PLATFORMS": " ".join(CondorRelease(release).build_platforms),
        "NEEDS_PYTHON3": "no",
    }
    return render("preflight.sh", "preflight", "create", values)


@pytest.mark.parametrize(
    ("os_release", "cron", "pgrep"),
    [
        (AMAZON_LINUX, "cronie", "procps-ng"),
        (ROCKY, "cronie", "procps-ng"),
        (DEBIAN, "cron", "procps"),
        (OPENSUSE, "cronie", "procps"),
    ],
    ids=["Amazon Linux", "Rocky", "Debian", "openSUSE"],
)
def test_the_keepers_tools_are_asked_for_by_the_distributions_package_names(
    bare_bin: str, os_release: str, cron: str, pgrep: str
):
    result = on_a_machine_of(os_release, preflight(), path=bare_bin)
    assert result.returncode != 0
    assert f"crontab ({cron})" in result.stderr and f"pgrep ({pgrep})" in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("os_release", "package", "service"), [(AMAZON_LINUX, "cronie", "crond"), (DEBIAN, "cron", "cron")]
)
def test_no_cron_daemon_running_stops_the_preflight_naming_the_package_and_its_service(
    os_release: str, package: str, service: str
):
    """In a PID namespace of its own, where no cron daemon runs (whatever runs on this machine)."""
    script = preflight()
    result = on_a_machine_of(os_release, script, pid_namespace=True)
    assert result.returncode != 0
    assert "no cron daemon runs on" in result.stderr, result.stderr
    assert f"install {package} and start it (systemctl enable --now {service})" in result.stderr, result.stderr
    assert shutil.which("pgrep"), "pgrep itself is here: it is the daemon that is missing"
