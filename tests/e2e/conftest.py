"""Session fixtures for the end-to-end tests: sshd, the user's home, stand-in tarballs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.machine import Machine, TarballServer, reset_home, start_sshd
from tests.e2e.release import build_release, copy_bindings

PLATFORM_OF_THIS_MACHINE = "x86_64_Debian12"
VERSIONS = ["24.0.24", "8.7.3"]
# Served again under /big with 8 MiB more: a download that takes long enough to cut half-way.
VERSION_TO_CUT = "24.0.24"


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
    return copy_bindings(workdir / "bindings")


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
    big = f"/condor-{VERSION_TO_CUT}-{PLATFORM_OF_THIS_MACHINE}-stripped.tar.gz"
    server.files[f"/big{big}"] = build_release(VERSION_TO_CUT, PLATFORM_OF_THIS_MACHINE, bindings, padding=8 << 20)
    server.start()
    return server


@pytest.fixture
def fresh_home(machine: Machine) -> Iterator[Path]:
    reset_home(machine)
    yield machine.home
    reset_home(machine)
