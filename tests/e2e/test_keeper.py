"""The keeper never kills a running pool, on the real HTCondor 24.0.23 and 25.0.13 of
../shared/real-htcondor, installed by the machine steps over SSH.

The user stops HTCondor with `condor_off -master` and starts it by hand with `condor_master`, as
HTCondor's documentation says (so no pid file of ours names it), and a job runs on it. The keeper,
run as cron runs it (the periodic entry and the @reboot one), finds that master by its instance lock
and leaves it, its daemons and the job alone. The README's way to keep HTCondor stopped lasts
across keeper runs; taking it back lets the keeper start HTCondor again. At a boot where cron runs
before the network is up, the keeper starts HTCondor only once it is.
"""

from __future__ import annotations

import dataclasses
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.annex_world import REAL_VERSIONS, wait_for
from tests.e2e.machine import (
    Machine,
    TarballServer,
    as_cron_runs,
    master_pids,
    our_cron_lines,
    snapshot,
)
from tests.e2e.netns import Link, Network
from tests.e2e.real_pool import as_user, pool_steps, queue_a_sleeping_job
from tests.e2e.replay import program_for

# The README's way to keep HTCondor stopped, and to let it run again, word for word (for 25.0.13;
# another release's install directory has its own version in its name).
README_KEEP_STOPPED = "touch ~/condor-25.0.13/local/condor-annex-keep-stopped && condor_off -master"
README_LET_IT_RUN = "rm ~/condor-25.0.13/local/condor-annex-keep-stopped"
# The machine at boot: a host whose one link comes up, and gets its default route, after cron ran.
BOOT_LINK = Link("cai-booting", "169.254.20.1", "169.254.20.2")
BOOT_NETWORK = Network("cai-bootnet", [BOOT_LINK])


def job_status(machine: Machine, install_dir: Path, cluster: str) -> str:
    return machine.run(f". {install_dir}/condor.sh && condor_q {cluster} -af JobStatus", timeout=60).stdout.strip()


def keeper_log(install_dir: Path) -> str:
    log = install_dir / "local" / "condor-annex-keeper.log"
    return log.read_text() if log.exists() else ""


@pytest.mark.parametrize("version", REAL_VERSIONS)
def test_a_master_started_by_hand_and_its_running_job_survive_the_keeper(
    machine: Machine, real_tarballs: TarballServer, fresh_home: Path, version: str
):
    before = snapshot(fresh_home)
    program, _ = program_for(machine, real_tarballs, version)
    pool_steps(machine, program, "create")
    install_dir = fresh_home / f"condor-{version}"
    at_boot, periodic = our_cron_lines(machine)

    # Stopped, then started by hand, as HTCondor's documentation says: no pid file of ours.
    as_user(machine, install_dir, "condor_off -master")
    wait_for("condor_master to stop", lambda: not master_pids(machine), timeout=120)
    as_user(machine, install_dir, "condor_master")
    (by_hand,) = wait_for("the hand-started master", lambda: master_pids(machine), timeout=60)
    cluster = queue_a_sleeping_job(machine, install_dir)

    def running() -> bool:
        machine.run(f". {install_dir}/condor.sh && condor_reschedule", timeout=60)
        return job_status(machine, install_dir, cluster) == "2"

    wait_for(f"job {cluster} running", running, timeout=180, every=3)
    daemons = master_pids(machine)

    for entry in (periodic, at_boot):
        as_cron_runs(machine, entry)
        assert master_pids(machine) == daemons == [by_hand], f"{entry} touched the running master"
        assert job_status(machine, install_dir, cluster) == "2", f"{entry} touched the running job"
    assert "starting" not in keeper_log(install_dir), keeper_log(install_dir)

    # Kept stopped, the README's way: the keeper leaves it stopped, run after run.
    as_user(machine, install_dir, f"condor_rm {cluster}")
    as_user(machine, install_dir, README_KEEP_STOPPED.replace("25.0.13", version))
    wait_for("condor_master to stop", lambda: not master_pids(machine), timeout=120)
    for _ in range(2):
        as_cron_runs(machine, periodic)
        time.sleep(1)
        assert not master_pids(machine), "the keeper started HTCondor the user keeps stopped"
    as_user(machine, install_dir, README_LET_IT_RUN.replace("25.0.13", version))
    as_cron_runs(machine, periodic)
    wait_for("the keeper's master", lambda: master_pids(machine), timeout=60)
    assert "condor_master started" in keeper_log(install_dir)

    pool_steps(machine, program, "delete")
    assert snapshot(fresh_home) == before and not master_pids(machine)


def test_at_boot_the_keeper_starts_condor_once_the_network_is_up(
    machine: Machine, real_tarballs: TarballServer, fresh_home: Path
):
    """Cron ran the @reboot entry before the network came up (the machine in a network namespace
    whose one link is still down, without its address): the keeper waits, saying so, and starts
    condor_master once the link is up with its default route, so the pool takes the network's
    address. (Started at once, as before, the master took loopback's, and kept it.)"""
    program, _ = program_for(machine, real_tarballs, "25.0.13")
    pool_steps(machine, program, "create")
    install_dir = fresh_home / "condor-25.0.13"
    at_boot, _ = our_cron_lines(machine)
    as_user(machine, install_dir, "condor_off -master")
    wait_for("condor_master to stop", lambda: not master_pids(machine), timeout=120)

    BOOT_NETWORK.create()
    try:
        BOOT_NETWORK.host_end(BOOT_LINK, up=False)
        with ThreadPoolExecutor(1) as cron:
            booting = cron.submit(as_cron_runs, dataclasses.replace(machine, namespace=BOOT_LINK.host), at_boot)
            wait_for("the keeper to wait", lambda: "waiting for the network" in keeper_log(install_dir), timeout=30)
            time.sleep(3)
            assert not master_pids(machine), "condor_master started before the network was up"
            BOOT_NETWORK.host_end(BOOT_LINK, up=True)
            booting.result(timeout=60)
        wait_for("the keeper's master", lambda: master_pids(machine), timeout=60)
        address_file = install_dir / "local" / "log" / ".master_address"
        address = wait_for(
            "the master's address", lambda: address_file.exists() and address_file.read_text(), timeout=60
        )
        assert BOOT_LINK.host_address in address, address
    finally:
        subprocess.run(["pkill", "-KILL", "-u", machine.user], check=False)
        BOOT_NETWORK.destroy()
    pool_steps(machine, program, "delete")
