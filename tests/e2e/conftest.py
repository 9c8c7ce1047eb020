"""Session fixtures for the end-to-end tests: sshd, the user's home, stand-in tarballs."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.machine import Machine, TarballServer, start_sshd
from tests.e2e.release import build_release

PLATFORM_OF_THIS_MACHINE = "x86_64_Debian12"
VERSIONS = ["24.0.24", "8.7.3"]


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("e2e")
    # The SSH user must read the bindings and keys beside it.
    for parent in [path, *path.parents]:
        if parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o755)
    return path


@pytest.fixture(scope="session")
def bindings(workdir: Path) -> str:
    """The htcondor wheel's parser, readable by the SSH user (the stand-in tools import it)."""
    site = Path(sysconfig.get_paths()["platlib"])
    target = workdir / "bindings"
    for package in ("htcondor2", "classad2", "htcondor.libs"):
        shutil.copytree(site / package, target / package)
    subprocess.run(["chmod", "-R", "a+rX", str(target)], check=True)
    return str(target)


@pytest.fixture(scope="session")
def machine(workdir: Path) -> Iterator[Machine]:
    process, machine = start_sshd(workdir / "sshd")
    yield machine
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def tarballs(bindings: str) -> TarballServer:
    server = TarballServer()
    for version in VERSIONS:
        name = f"/condor-{version}-{PLATFORM_OF_THIS_MACHINE}-stripped.tar.gz"
        server.files[name] = build_release(version, PLATFORM_OF_THIS_MACHINE, bindings)
        server.files[f"/broken{name}"] = build_release(version, PLATFORM_OF_THIS_MACHINE, bindings, master_starts=False)
        server.files[f"/crashing{name}"] = build_release(
            version, PLATFORM_OF_THIS_MACHINE, bindings, master_crashes=True
        )
    server.start()
    return server


@pytest.fixture
def fresh_home(machine: Machine) -> Iterator[Path]:
    """The SSH user's home as useradd made it, with none of its processes left running."""

    def reset() -> None:
        subprocess.run(["pkill", "-KILL", "-u", machine.user], check=False)
        shutil.rmtree(machine.home, ignore_errors=True)
        shutil.copytree("/etc/skel", machine.home)
        subprocess.run(["chown", "-R", f"{machine.user}:{machine.user}", str(machine.home)], check=True)
        machine.home.chmod(0o750)
        for lock in Path("/tmp").glob("condor-lock.*"):
            shutil.rmtree(lock, ignore_errors=True)

    reset()
    yield machine.home
    reset()
