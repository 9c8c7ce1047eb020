"""Faults over SSH: what a user's real machine and network do to a `pulumi up` half-way through."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.conftest import PLATFORM_OF_THIS_MACHINE, VERSION_TO_CUT
from tests.e2e.machine import Machine, Stall, TarballServer, master_running, snapshot
from tests.e2e.replay import StepFailedError, destroy, program_for, up

VERSION = "24.0.23"
TARBALL = f"/condor-{VERSION}-{PLATFORM_OF_THIS_MACHINE}-stripped.tar.gz"


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_session_dropped_mid_download_then_the_next_up_continues_it(
    machine: Machine, tarballs: TarballServer, fresh_home: Path
):
    before = snapshot(fresh_home)
    program, _ = program_for(machine, tarballs, VERSION_TO_CUT, prefix="/big")
    big = f"/big/condor-{VERSION_TO_CUT}-{PLATFORM_OF_THIS_MACHINE}-stripped.tar.gz"
    stall = Stall()
    tarballs.stalls[big] = stall
    with ThreadPoolExecutor(max_workers=1) as pool:
        first_up = pool.submit(up, machine, program)
        assert stall.reached.wait(timeout=60), "the install step never started its download"
        pattern = ".condor-annex-download.*/condor.tar.gz"
        assert wait_until(lambda: any(path.stat().st_size for path in fresh_home.glob(pattern))), "nothing on disk"
        # The session, and everything it started, dies at once: a dropped link that sshd reaps,
        # a reboot, the OOM killer.
        subprocess.run(["pkill", "-KILL", "-u", machine.user], check=False)
        stall.release.set()
        with pytest.raises(StepFailedError) as failed:
            first_up.result(timeout=120)
    assert failed.value.step == "personal-condor-install"
    (partial,) = fresh_home.glob(".condor-annex-download.*/condor.tar.gz")
    received = partial.stat().st_size
    assert 0 < received < len(tarballs.files[big])

    results = up(machine, program)
    install_log = results["personal-condor-install"].stderr
    assert f"cut off at {received} bytes" in install_log and "left by a run that was cut off" in install_log
    assert tarballs.ranges[-1] == f"bytes={received}-", "the next up fetched the whole tarball again"
    assert not list(fresh_home.glob(".condor-annex-download.*"))
    assert master_running(machine)
    destroy(machine, program)
    assert snapshot(fresh_home) == before


def test_a_download_that_cannot_be_continued_starts_again(machine: Machine, tarballs: TarballServer, fresh_home: Path):
    """A cut-off download that was in fact complete: the server answers 416, so fetch it whole."""
    program, _ = program_for(machine, tarballs, VERSION)
    staging = fresh_home / f".condor-annex-download.condor-{VERSION}.cutoff"
    staging.mkdir()
    (staging / "url").write_text(tarballs.url(TARBALL) + "\n")
    (staging / "condor.tar.gz").write_bytes(tarballs.files[TARBALL] + b"trailing bytes from elsewhere")
    subprocess.run(["chown", "-R", f"{machine.user}:{machine.user}", str(staging)], check=True)

    results = up(machine, program)
    assert "downloading from the start" in results["personal-condor-install"].stderr
    assert master_running(machine)
    destroy(machine, program)


@contextlib.contextmanager
def full_disk(directory: Path) -> Iterator[None]:
    """`directory` on a filesystem of its own with no free block left, contents and owner kept."""
    info = directory.stat()
    saved = Path(tempfile.mkdtemp()) / "saved"
    subprocess.run(["cp", "-a", str(directory), str(saved)], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(directory)], check=True)
    try:
        subprocess.run(["cp", "-a", f"{saved}/.", str(directory)], check=True)
        os.chown(directory, info.st_uid, info.st_gid)
        directory.chmod(info.st_mode)
        # A dotfile: HTCondor's LOCAL_CONFIG_DIR_EXCLUDE_REGEXP skips it, as it skips our staging file.
        with contextlib.suppress(OSError), open(directory / ".filler", "wb", buffering=0) as filler:
            while True:
                filler.write(b"\0" * 4096)
        yield
    finally:
        subprocess.run(["umount", str(directory)], check=True)
        shutil.rmtree(saved.parent)


def test_disk_full_while_writing_config_keeps_the_old_file_whole(
    machine: Machine, tarballs: TarballServer, fresh_home: Path
):
    program, _ = program_for(machine, tarballs, VERSION)
    up(machine, program)
    config_dir = fresh_home / f"condor-{VERSION}" / "local" / "config.d"
    ours = config_dir / "50-condor-annex"
    old = ours.read_bytes()
    moved, new_port = program_for(machine, tarballs, VERSION)

    with full_disk(config_dir):
        with pytest.raises(StepFailedError) as failed:
            up(machine, moved)
        assert failed.value.step == "personal-condor-configure"
        assert "is the disk full?" in failed.value.result.stderr
        assert ours.read_bytes() == old, "a failed write changed the config HTCondor reads"
        assert sorted(path.name for path in config_dir.iterdir()) == [".filler", "00-personal-condor", ours.name]

    up(machine, moved)
    assert f":{new_port}" in ours.read_text()
    destroy(machine, moved)


def test_master_that_dies_after_starting_fails_the_start_step_at_once(
    machine: Machine, tarballs: TarballServer, fresh_home: Path
):
    before = snapshot(fresh_home)
    program, _ = program_for(machine, tarballs, VERSION, prefix="/crashing")
    with pytest.raises(StepFailedError) as failed:
        up(machine, program)
    assert failed.value.step == "personal-condor-start"
    message = failed.value.result.stderr
    assert "exited after it started" in message, message
    assert "died due to signal 11" in message and "EXITING WITH STATUS 4" in message, "MasterLog's last words"
    assert "did not come up within" not in message, "it waited out the start timeout for a dead master"
    destroy(machine, program)
    assert snapshot(fresh_home) == before
