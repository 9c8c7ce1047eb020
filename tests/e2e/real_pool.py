"""The personal HTCondor's machine steps alone, on a real release, and the user's commands on it."""

from __future__ import annotations

import shlex
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


def queue_a_sleeping_job(machine: Machine, install_dir: Path, *submit_options: str) -> str:
    """A job that sleeps 10 minutes, submitted as the user (condor_submit given these options);
    its cluster id."""
    submitted = as_user(
        machine,
        install_dir,
        "cd \"$(mktemp -d)\" && printf 'executable = /bin/sleep\\narguments = 600\\nqueue\\n' >job.sub && "
        f"condor_submit {shlex.join(submit_options)} job.sub",
    )
    return submitted.split("submitted to cluster ")[1].split(".")[0]


def as_user(machine: Machine, install_dir: Path, command: str) -> str:
    """A command run as the SSH user in HTCondor's environment; its output, or the test fails."""
    done = machine.run(f". {install_dir}/condor.sh && {command}", timeout=120)
    assert done.status == 0, f"{command}: {done.stdout}{done.stderr}"
    return done.stdout
