"""The personal HTCondor's machine steps alone, on a real release, and the user's commands on it."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.machine import Machine
from tests.e2e.replay import StepFailedError, run_step, steps
from tests.harness import Program, Registration

POOL_STEPS = ("preflight", "condor-dir", "personal-condor-")


def pool_steps(machine: Machine, program: Program, action: str) -> None:
    """The personal HTCondor's steps alone (the AWS side plays no part here): made, or undone."""
    pool: list[Registration] = [step for step in steps(program) if step.name.startswith(POOL_STEPS)]
    for step in pool if action == "create" else reversed(pool):
        result = run_step(machine, step, action)
        if result.status != 0:
            raise StepFailedError(step.name, result)


def as_user(machine: Machine, install_dir: Path, command: str) -> str:
    """A command run as the SSH user in HTCondor's environment; its output, or the test fails."""
    done = machine.run(f". {install_dir}/condor.sh && {command}", timeout=120)
    assert done.status == 0, f"{command}: {done.stdout}{done.stderr}"
    return done.stdout
