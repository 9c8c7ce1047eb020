"""The machine side's whole life under the real engine, over real OpenSSH, against the stand-ins.

Each point is read from the engine's own results (its operations, `stack export`) and from the
machine. Where the replay (tests/e2e/replay.py) says what a transition runs, the engine is held to
the same commands.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.contract import CondorRelease
from tests.e2e.engine import ENGINE_POOL_PASSWORD, SECRET_ACCESS_KEY, EngineStack, engine_stack
from tests.e2e.machine import Machine, TarballServer, free_port, lock_dirs, master_running, snapshot
from tests.e2e.release import StandinFiles, stored_password
from tests.e2e.replay import program_for, steps

NEW_PASSWORD = "SENTINEL-engine-new-password-b71f"


def tool_runs(files: StandinFiles) -> list[str]:
    return [json.loads(line)[0] for line in files.argv_log.read_text().splitlines()]


def replay_names(machine: Machine, tarballs: TarballServer, version: str, port: int, **config: str) -> list[str]:
    """The commands the replay runs for this config, in its order."""
    program, _ = program_for(machine, tarballs, version, port=port, **config)
    return [step.name for step in steps(program)]


@pytest.mark.parametrize("version", ["25.0.13", "8.7.3"])
def test_a_whole_life_under_the_engine(
    machine: Machine,
    tarballs: TarballServer,
    standin_files: StandinFiles,
    fresh_home: Path,
    tmp_path: Path,
    version: str,
):
    release = CondorRelease(version)
    before = snapshot(fresh_home)
    port = free_port()
    stack: EngineStack = engine_stack(tmp_path, machine, tarballs, version, port)

    # Up from nothing: every command the replay runs, created, and a working pool.
    first = stack.up()
    assert not first.error, first.error + first.output
    assert first.changed() == dict.fromkeys(replay_names(machine, tarballs, version, port), "create")
    assert master_running(machine)
    install_dir = fresh_home / f"condor-{version}"
    queue = machine.run(f". {install_dir}/condor.sh && condor_q")
    assert "Total for query: 0 jobs" in queue.stdout, queue.stdout

    # Nothing to do: the preview says so, an up changes nothing and runs no HTCondor tool, and a
    # refresh finds the state as it was.
    standin_files.argv_log.write_text("")
    assert not (no_changes := stack.preview(expect_no_changes=True)).error, no_changes.error
    again = stack.up()
    assert not again.error and not again.changed(), again.changed()
    assert tool_runs(standin_files) == []
    assert not (refreshed := stack.refresh(expect_no_changes=True)).error, refreshed.error

    # A new pool password: exactly the store and the restart run again, onto fresh daemons (the
    # stand-in counts its restarts as generations; the test job ran on the second).
    stack.set({"condor-annex:poolPassword": NEW_PASSWORD}, secret=("condor-annex:poolPassword",))
    changed = stack.up()
    assert not changed.error, changed.error
    assert changed.changed() == {"personal-condor-pool-password": "update", "personal-condor-start": "update"}
    assert stored_password(install_dir / "local" / release.pool_password_file) == NEW_PASSWORD.encode()
    history = install_dir / "local" / "spool" / "history"
    assert json.loads(history.read_text().splitlines()[-1])["DaemonGeneration"] == 2

    # Nothing the user supplied in secret is in plain text in `stack export` or in any state file.
    exported, stored = stack.export(), stack.stored()
    key_body = machine.client_key.read_text().splitlines()[1]
    assert '"ciphertext"' in exported
    for secret in (ENGINE_POOL_PASSWORD, NEW_PASSWORD, SECRET_ACCESS_KEY, key_body):
        assert secret not in exported and secret not in stored

    # Destroy: an empty stack and the home as it was.
    gone = stack.destroy()
    assert not gone.error, gone.error
    assert stack.resources() == []
    assert snapshot(fresh_home) == before
    assert not master_running(machine) and not lock_dirs()
