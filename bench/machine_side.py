"""Machine-side wall time and SSH sessions over a real sshd on loopback (needs root, as CI has).

Uses the end-to-end harness (tests/e2e): a real OpenSSH server on loopback, a non-root user, and
the stand-in HTCondor release served on loopback. The stand-in's daemons answer within a second
and run the test job at once, so the figures are our steps' own cost (SSH sessions, download,
unpack, checks), not a real condor's start-up (a real 24.0.23 took about 14 s more for the job).
Prints, for the 25.0 and 24.0 lines, a fresh install, a repeated `pulumi up` with nothing changed,
a run of every step again (what a `pulumi up` after a partial failure does), a second region added
and removed again, and a destroy: wall time, SSH sessions, and tarball downloads.

    sudo .venv/bin/python bench/machine_side.py

Not while the end-to-end tests run: both log in as, and reset the home of, the same user.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

from common import machine_description, table

from tests.e2e.conftest import PLATFORM_OF_THIS_MACHINE, write_aws_state
from tests.e2e.machine import Machine, TarballServer, reset_home, start_sshd
from tests.e2e.release import StandinFiles, build_release, copy_bindings
from tests.e2e.replay import destroy, program_for, transition, up
from tests.harness import Program

VERSIONS = ("25.0.13", "24.0.23")
ONE_REGION = json.dumps(["us-east-1"])
TWO_REGIONS = json.dumps(["us-east-1", "eu-west-2"])


def measure(machine: Machine, tarballs: TarballServer, action: object, *args: object) -> list[object]:
    sessions, downloads = machine.sessions, len(tarballs.requests)
    started = time.perf_counter()
    action(*args)  # type: ignore[operator]
    return [f"{time.perf_counter() - started:.2f}", machine.sessions - sessions, len(tarballs.requests) - downloads]


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-machine-side."))
    workdir.chmod(0o755)
    sshd, machine = start_sshd(workdir / "sshd")
    try:
        files = StandinFiles(copy_bindings(workdir / "bindings"), workdir / "argv.log", workdir / "aws-state.json")
        files.argv_log.touch()
        files.argv_log.chmod(0o666)
        write_aws_state(files, regions=("us-east-1", "eu-west-2"))
        tarballs = TarballServer()
        for version in VERSIONS:
            tarballs.files[f"/condor-{version}-{PLATFORM_OF_THIS_MACHINE}-stripped.tar.gz"] = build_release(
                version, PLATFORM_OF_THIS_MACHINE, files
            )
        tarballs.start()
        rows = []
        for version in VERSIONS:
            reset_home(machine)
            program, port = program_for(machine, tarballs, version, regions=ONE_REGION)
            two, _ = program_for(machine, tarballs, version, port=port, regions=TWO_REGIONS)

            def unchanged(program: Program = program) -> None:
                """The provider diffs inputs first; with nothing changed it opens no session at all."""
                assert program.changed_from(program) == []

            rows += [
                [version, "fresh install (up)", *measure(machine, tarballs, up, machine, program)],
                [version, "up again, nothing changed", *measure(machine, tarballs, unchanged)],
                [version, "every step again (up after a failure)", *measure(machine, tarballs, up, machine, program)],
                [version, "add a region", *measure(machine, tarballs, transition, machine, program, two)],
                [version, "remove it again", *measure(machine, tarballs, transition, machine, two, program)],
                [version, "destroy", *measure(machine, tarballs, destroy, machine, program)],
            ]
        reset_home(machine)
    finally:
        sshd.terminate()
        sshd.wait(timeout=10)
        shutil.rmtree(workdir)
    print(machine_description())
    print()
    headers = ["version", "machine side (9 steps, 11 with two regions)", "wall s", "SSH sessions", "downloads"]
    print(table(headers, rows))


if __name__ == "__main__":
    main()
