"""Run the program's registered remote commands over SSH, as the command provider would."""

from __future__ import annotations

from dataclasses import dataclass

from tests.e2e.machine import Machine, Result, TarballServer, free_port
from tests.harness import Program, Registration, run_program


@dataclass
class StepFailedError(Exception):
    step: str
    result: Result

    def __str__(self) -> str:
        return f"{self.step} exited {self.result.status}: {self.result.stderr.strip()}"


def steps(program: Program) -> list[Registration]:
    """The commands in an order where each comes after everything it depends on."""
    commands = program.of_type("command:remote:Command")
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


def up(machine: Machine, program: Program, stop_before: str | None = None) -> dict[str, Result]:
    """Run every step's create in order (up to, not including, `stop_before`)."""
    results = {}
    for step in steps(program):
        if step.name == stop_before:
            break
        result = machine.run(step.inputs["create"], step.inputs.get("stdin"), step.inputs["connection"])
        results[step.name] = result
        if result.status != 0:
            raise StepFailedError(step.name, result)
    return results


def destroy(machine: Machine, program: Program) -> None:
    for step in reversed(steps(program)):
        result = machine.run(step.inputs["delete"], connection=step.inputs["connection"])
        if result.status != 0:
            raise StepFailedError(step.name, result)


def program_for(
    machine: Machine, tarballs: TarballServer, version: str, prefix: str = "", port: int | None = None, **extra: str
) -> tuple[Program, int]:
    """The program configured for this machine and a collector port, free unless given (returned too)."""
    port = port or free_port()
    config = {
        "condor-annex:host": "127.0.0.1",
        "condor-annex:sshPort": str(machine.port),
        "condor-annex:sshUser": machine.user,
        "condor-annex:condorVersion": version,
        "condor-annex:condorTarballUrl": tarballs.url(f"{prefix}/condor-{version}-{{platform}}-stripped.tar.gz"),
        "condor-annex:collectorPort": str(port),
        **{f"condor-annex:{key}": value for key, value in extra.items()},
    }
    return run_program(config), port
