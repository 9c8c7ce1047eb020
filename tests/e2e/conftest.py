"""Session fixtures for the end-to-end tests: sshd, the user's home, stand-in tarballs."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.contract import STACK_NAMES
from tests.e2e.annex_world import MACHINE_PLATFORM, REAL_VERSIONS, real_tarball
from tests.e2e.machine import Machine, TarballServer, readable_by_everyone, reset_home, start_sshd
from tests.e2e.release import PLATFORM_OF_THIS_MACHINE, StandinFiles, build_release, copy_bindings, tarball_path

# One release of each line whose tools behave differently for us: 8.7 (condor_install, unprefixed
# knobs), 9.0-10.7 (condor_store_cred ignores -i with -f), 24.0 (the last with condor_annex on PATH)
# and 25.0 (the default: use feature:HPC_ANNEX, `htcondor annex checksetup`).
VERSIONS = ["25.0.13", "24.0.23", "10.0.9", "8.7.3"]
# Served again under /big with 8 MiB more: a download that takes long enough to cut half-way.
VERSION_TO_CUT = "24.0.23"


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The SSH user must read the bindings and keys beside it.
    return readable_by_everyone(tmp_path_factory.mktemp("e2e"))


@pytest.fixture(scope="session")
def standin_files(workdir: Path) -> StandinFiles:
    files = StandinFiles(
        bindings=copy_bindings(workdir / "bindings"),
        argv_log=workdir / "argv.log",
        aws_state=workdir / "aws-state.json",
    )
    files.argv_log.touch()
    files.argv_log.chmod(0o666)  # every tool the SSH user runs appends to it
    return files


@pytest.fixture(scope="session")
def bindings(standin_files: StandinFiles) -> str:
    return standin_files.bindings


@pytest.fixture(scope="session", autouse=True)
def cron_daemon(workdir: Path) -> Iterator[None]:
    """A process named cron, as the preflight asks for one. Not the real daemon: it would run the
    keeper lines the tests write, on its own schedule, in the middle of tests that run those lines
    themselves as cron runs them (test_machine's as_cron_runs)."""
    if subprocess.run(["pgrep", "-x", "cron|crond"], capture_output=True, check=False).returncode == 0:
        yield
        return
    named_cron = workdir / "cron-standin" / "cron"
    named_cron.parent.mkdir()
    shutil.copy("/bin/sleep", named_cron)
    process = subprocess.Popen([str(named_cron), "infinity"])
    yield
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def machine(workdir: Path) -> Iterator[Machine]:
    process, machine = start_sshd(workdir / "sshd")
    yield machine
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def sshd_host_key(machine: Machine) -> Path:
    """The public half of the test sshd's host key."""
    return machine.host_key


@pytest.fixture(scope="session")
def tarballs(standin_files: StandinFiles) -> TarballServer:
    server = TarballServer()
    for version in VERSIONS:
        name = f"/condor-{version}-{PLATFORM_OF_THIS_MACHINE}-stripped.tar.gz"
        server.files[name] = build_release(version, PLATFORM_OF_THIS_MACHINE, standin_files)
        server.files[f"/broken{name}"] = build_release(
            version, PLATFORM_OF_THIS_MACHINE, standin_files, master_starts=False
        )
        server.files[f"/crashing{name}"] = build_release(
            version, PLATFORM_OF_THIS_MACHINE, standin_files, master_crashes=True
        )
    name = f"/condor-24.0.23-{PLATFORM_OF_THIS_MACHINE}-stripped.tar.gz"
    server.files[f"/unmatched{name}"] = build_release(
        "24.0.23", PLATFORM_OF_THIS_MACHINE, standin_files, never_matches=True
    )
    big = f"/condor-{VERSION_TO_CUT}-{PLATFORM_OF_THIS_MACHINE}-stripped.tar.gz"
    server.files[f"/big{big}"] = build_release(VERSION_TO_CUT, PLATFORM_OF_THIS_MACHINE, standin_files, padding=8 << 20)
    server.start()
    return server


def write_aws_state(
    files: StandinFiles,
    stacks: tuple[str, ...] = STACK_NAMES,
    key_known_from: float = 0,
    regions: tuple[str, ...] = ("us-east-1",),
    policy_known_from: float = 0,
    annexes: dict[str, dict[str, int]] | None = None,
) -> None:
    """What the stand-in's condor_annex finds in AWS: these stacks in each of these regions, the key
    known from then on, its policy in force from then on, and the annexes running per region (which
    its `-duration` ends, so the SSH user may write the file)."""
    state = {
        "stacks": {region: stacks for region in regions},
        "key_known_from": key_known_from,
        "policy_known_from": policy_known_from,
        "annexes": annexes or {},
    }
    files.aws_state.write_text(json.dumps(state))
    files.aws_state.chmod(0o666)


@pytest.fixture
def fresh_home(machine: Machine, standin_files: StandinFiles) -> Iterator[Path]:
    reset_home(machine)
    write_aws_state(standin_files)
    standin_files.argv_log.write_text("")
    yield machine.home
    reset_home(machine)


@pytest.fixture(scope="module")
def real_tarballs() -> Iterator[TarballServer]:
    """The real releases of ../shared/real-htcondor, served where the program downloads them."""
    server = TarballServer()
    for version in REAL_VERSIONS:
        path = tarball_path(version).replace("{platform}", MACHINE_PLATFORM)
        server.files[path] = real_tarball(version).read_bytes()
    server.start()
    yield server
