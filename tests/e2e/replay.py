"""Run the program's registered remote commands over SSH, as the command provider would.

Checked against the real thing (pulumi-command 1.2.1 under the Pulumi engine v3.274.1,
tests/e2e/test_engine.py): for a fresh up, an unchanged up, a new pool password, a region added and
removed, and a destroy, the provider ran the same commands as `up`, `transition` and `destroy`
here, and never one before the steps this order rests on had finished. Where they differ, the
engine is right, and the engine tests cover it:
- the provider runs independent steps at once; this runs them one after another;
- it dials 30 times with a backoff (113 s in all for a refused port), and a refused host key is
  one more dial error to retry; `Machine.run` retries refused dials a second apart and checks no
  host key at all;
- its error quotes the whole command before the step's output; `StepFailedError` gives stderr;
- it dials with TCP keepalive (15 s, 9 probes), so a silent session fails in about 150 s; the
  OpenSSH client here keeps the system's two-hour default;
- it keeps state: a failed create is not recorded, a killed CLI leaves pending creates and a lock.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.e2e.machine import SSH_HOST, Machine, Result, TarballServer, free_port, host_key_line
from tests.e2e.release import tarball_path
from tests.harness import LOCAL_REACH, Program, Registration, run_program


@dataclass
class StepFailedError(Exception):
    step: str
    result: Result

    def __str__(self) -> str:
        return f"{self.step} exited {self.result.status}: {self.result.stderr.strip()}"


LOCAL_COMMAND = "command:local:Command"


def steps(program: Program) -> list[Registration]:
    """The commands in an order where each comes after everything it depends on."""
    commands = program.of_type("command:remote:Command") + program.of_type(LOCAL_COMMAND)
    ordered: list[Registration] = []
    pending = list(commands)
    while pending:
        ready = [step for step in pending if all(dep not in {p.urn for p in pending} for dep in step.dependencies)]
        assert ready, "dependency cycle among remote steps"
        ordered += ready
        pending = [step for step in pending if step not in ready]
    return ordered


def step_named(program: Program, name: str) -> Registration:
    return next(step for step in steps(program) if step.name == name)


def run_step(machine: Machine, step: Registration, action: str = "create") -> Result:
    """One action of a step, run the way its kind of command runs it."""
    stdin = step.inputs.get("stdin") if action == "create" else None
    if step.type == LOCAL_COMMAND:
        return machine.run_here(step.inputs[action], stdin)
    return machine.run(step.inputs[action], stdin, step.inputs["connection"])


def up(machine: Machine, program: Program, stop_before: str | None = None) -> dict[str, Result]:
    """Run every step's create in order (up to, not including, `stop_before`)."""
    results = {}
    for step in steps(program):
        if step.name == stop_before:
            break
        result = run_step(machine, step)
        results[step.name] = result
        if result.status != 0:
            raise StepFailedError(step.name, result)
    return results


def destroy(machine: Machine, program: Program) -> None:
    for step in reversed(steps(program)):
        result = run_step(machine, step, "delete")
        if result.status != 0:
            raise StepFailedError(step.name, result)


def transition(machine: Machine, before: Program, after: Program) -> list[str]:
    """What a `pulumi up` from `before` to `after` runs on the machine: the deletes of the steps that
    are gone (last first), then the creates of the steps that are new or changed, in order."""
    kept = {step.name for step in steps(after)}
    changed = set(after.changed_from(before))
    ran = []
    for step in reversed(steps(before)):
        if step.name not in kept:
            result = run_step(machine, step, "delete")
            if result.status != 0:
                raise StepFailedError(step.name, result)
            ran.append(f"delete {step.name}")
    for step in steps(after):
        if step.name in changed:
            result = run_step(machine, step)
            if result.status != 0:
                raise StepFailedError(step.name, result)
            ran.append(f"create {step.name}")
    return ran


def ssh_reach(machine: Machine) -> dict[str, str | None]:
    """How the config reaches the machine over SSH, its host key pinned (no known_hosts needed)."""
    return {
        "condor-annex:host": SSH_HOST,
        "condor-annex:sshPort": str(machine.port),
        "condor-annex:sshUser": machine.user,
        "condor-annex:sshHostKey": host_key_line(machine.host_key),
    }


def program_for(
    machine: Machine,
    tarballs: TarballServer,
    version: str,
    prefix: str = "",
    port: int | None = None,
    local: bool = False,
    **extra: str,
) -> tuple[Program, int]:
    """The program configured for this machine, over SSH or (`local`) as the user running pulumi on
    it, and a collector port, free unless given (returned too)."""
    port = port or free_port()
    config = {
        **(LOCAL_REACH if local else ssh_reach(machine)),
        "condor-annex:condorVersion": version,
        "condor-annex:condorTarballUrl": tarballs.url(tarball_path(version, prefix)),
        "condor-annex:collectorPort": str(port),
        **{f"condor-annex:{key}": value for key, value in extra.items()},
    }
    return run_program(config), port
