"""Machine-side wall time and SSH sessions over a real sshd on loopback (needs root, as CI has),
under the real Pulumi engine and under the replay, side by side.

Uses the end-to-end harness (tests/e2e): a real OpenSSH server on loopback, a non-root user, and
the stand-in HTCondor release served on loopback. The stand-in's daemons answer within a second
and run the test job at once, so the figures are our steps' own cost (SSH sessions, download,
unpack, checks), not a real condor's start-up (a real 24.0.23 took about 14 s more for the job).

For the 25.0 and 24.0 lines: a fresh install, a repeated `pulumi up` with nothing changed, a run of
every step again (what a `pulumi up` after a partial failure does; replay only), a second region
added and removed again, and a destroy. The engine column is the real CLI, language host and
command provider (`.ci/engine`, PULUMI_ENGINE_BIN) running tests/engine/machine_side, each
operation a CLI run of its own, so it includes the CLI's start, the program's evaluation and the
state's writes; its SSH connections are counted at a forwarding port in front of sshd.

    sudo PULUMI_ENGINE_BIN=$(bash .ci/engine) .venv/bin/python bench/machine_side.py

Not while the end-to-end tests run: both log in as, and reset the home of, the same user.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import machine_description, table

from tests.e2e.conftest import PLATFORM_OF_THIS_MACHINE, write_aws_state
from tests.e2e.engine import EngineStack, engine_stack
from tests.e2e.machine import LatePort, Machine, TarballServer, free_port, reset_home, start_sshd
from tests.e2e.release import StandinFiles, build_release, copy_bindings
from tests.e2e.replay import destroy, program_for, transition, up
from tests.harness import Program

VERSIONS = ("25.0.13", "24.0.23")
ONE_REGION = ["us-east-1"]
TWO_REGIONS = ["us-east-1", "eu-west-2"]


def measure(count: Callable[[], int], tarballs: TarballServer, action: Callable[[], object]) -> list[object]:
    """Wall time, SSH sessions (as `count` counts them) and downloads of one action."""
    sessions, downloads = count(), len(tarballs.requests)
    started = time.perf_counter()
    action()
    return [f"{time.perf_counter() - started:.2f}", count() - sessions, len(tarballs.requests) - downloads]


def replay_rows(machine: Machine, tarballs: TarballServer, version: str) -> dict[str, list[object]]:
    program, port = program_for(machine, tarballs, version, regions=json.dumps(ONE_REGION))
    two, _ = program_for(machine, tarballs, version, port=port, regions=json.dumps(TWO_REGIONS))

    def unchanged(program: Program = program) -> None:
        """The provider diffs inputs first; with nothing changed it opens no session at all."""
        assert program.changed_from(program) == []

    def sessions() -> int:
        return machine.sessions

    return {
        "fresh install (up)": measure(sessions, tarballs, lambda: up(machine, program)),
        "up again, nothing changed": measure(sessions, tarballs, unchanged),
        "every step again (up after a failure)": measure(sessions, tarballs, lambda: up(machine, program)),
        "add a region": measure(sessions, tarballs, lambda: transition(machine, program, two)),
        "remove it again": measure(sessions, tarballs, lambda: transition(machine, two, program)),
        "destroy": measure(sessions, tarballs, lambda: destroy(machine, program)),
    }


def engine_rows(machine: Machine, tarballs: TarballServer, version: str, workdir: Path) -> dict[str, list[object]]:
    link = LatePort(target=machine.port, opens_after=0)
    try:
        stack = engine_stack(
            workdir, machine, tarballs, version, free_port(), **{"condor-annex:sshPort": str(link.port)}
        )

        def run(operation: Callable[[], object]) -> Callable[[], None]:
            def action() -> None:
                result = operation()
                assert not result.error, result.error  # type: ignore[attr-defined]

            return action

        def regions(names: list[str], stack: EngineStack = stack) -> Callable[[], object]:
            def change() -> object:
                stack.regions(names)
                return stack.up()

            return change

        def connections() -> int:
            return link.accepted

        return {
            "fresh install (up)": measure(connections, tarballs, run(stack.up)),
            "up again, nothing changed": measure(connections, tarballs, run(stack.up)),
            "add a region": measure(connections, tarballs, run(regions(TWO_REGIONS))),
            "remove it again": measure(connections, tarballs, run(regions(ONE_REGION))),
            "destroy": measure(connections, tarballs, run(stack.destroy)),
        }
    finally:
        link.close()


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-machine-side."))
    workdir.chmod(0o755)
    sshd, machine = start_sshd(workdir / "sshd")
    try:
        files = StandinFiles(copy_bindings(workdir / "bindings"), workdir / "argv.log", workdir / "aws-state.json")
        files.argv_log.touch()
        files.argv_log.chmod(0o666)
        write_aws_state(files, regions=tuple(TWO_REGIONS))
        tarballs = TarballServer()
        for version in VERSIONS:
            tarballs.files[f"/condor-{version}-{PLATFORM_OF_THIS_MACHINE}-stripped.tar.gz"] = build_release(
                version, PLATFORM_OF_THIS_MACHINE, files
            )
        tarballs.start()
        rows = []
        for version in VERSIONS:
            reset_home(machine)
            replay = replay_rows(machine, tarballs, version)
            reset_home(machine)
            engine = engine_rows(machine, tarballs, version, workdir / f"engine-{version}")
            for operation, replayed in replay.items():
                rows.append([version, operation, *replayed, *engine.get(operation, ["-", "-", "-"])])
        reset_home(machine)
    finally:
        sshd.terminate()
        sshd.wait(timeout=10)
        shutil.rmtree(workdir)
    print(machine_description())
    print()
    headers = [
        "version",
        "machine side (13 steps, 15 with two regions)",
        "replay wall s",
        "replay SSH sessions",
        "replay downloads",
        "engine wall s",
        "engine SSH connections",
        "engine downloads",
    ]
    print(table(headers, rows))


if __name__ == "__main__":
    main()
