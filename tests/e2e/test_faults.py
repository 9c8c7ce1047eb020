"""Faults over SSH: what a user's real machine and network do to a `pulumi up` half-way through."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.conftest import PLATFORM_OF_THIS_MACHINE
from tests.e2e.machine import VOLATILE, LatePort, Machine, Stall, TarballServer, master_running, snapshot
from tests.e2e.replay import StepFailedError, destroy, program_for, up

VERSION = "24.0.24"
TARBALL = f"/condor-{VERSION}-{PLATFORM_OF_THIS_MACHINE}-stripped.tar.gz"


def test_refused_connection_is_dialled_again_until_sshd_answers(
    machine: Machine, tarballs: TarballServer, fresh_home: Path
):
    booting = LatePort(target=machine.port, opens_after=3)
    try:
        program, _ = program_for(machine, tarballs, VERSION, sshPort=str(booting.port))
        refused = machine.refused_dials
        up(machine, program)
        assert machine.refused_dials - refused >= 2, "the first dials should have met a closed port"
        assert master_running(machine)
        destroy(machine, program)
    finally:
        booting.close()


def test_session_dropped_mid_download_then_the_next_up_completes(
    machine: Machine, tarballs: TarballServer, fresh_home: Path
):
    before = snapshot(fresh_home)
    program, _ = program_for(machine, tarballs, VERSION)
    stall = Stall()
    tarballs.stalls[TARBALL] = stall
    with ThreadPoolExecutor(max_workers=1) as pool:
        first_up = pool.submit(up, machine, program)
        assert stall.reached.wait(timeout=60), "the install step never started its download"
        # The session, and everything it started, dies at once: a dropped link that sshd reaps,
        # a reboot, the OOM killer.
        subprocess.run(["pkill", "-KILL", "-u", machine.user], check=False)
        stall.release.set()
        with pytest.raises(StepFailedError) as failed:
            first_up.result(timeout=120)
    assert failed.value.step == "personal-condor-install"
    assert list(fresh_home.glob(".condor-annex-download.*")), "the cut-off run should have left its download"

    results = up(machine, program)
    assert "left by a run that was cut off" in results["personal-condor-install"].stderr
    assert not list(fresh_home.glob(".condor-annex-download.*"))
    assert master_running(machine)
    destroy(machine, program)
    assert snapshot(fresh_home) == before


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
    assert snapshot(fresh_home, VOLATILE) == before
