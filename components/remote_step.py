"""How every machine-side step becomes a `pulumi_command.remote.Command`.

A step is a real script in `remote/` (lintable, `set -euo pipefail`). Its command string is that
script behind a rendered header of plain values; secrets travel on stdin only. Each step runs as
`bash -c '<header + lib.sh + script>' <step> create|delete`, in a fresh non-login shell.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_command as command

SCRIPTS = Path(__file__).resolve().parent / "remote"


def shell_value(value: str) -> str:
    """A single-quoted shell word; a leading `~/` becomes `"$HOME"/` so it expands on the machine."""
    if value.startswith("~/"):
        return '"$HOME"/' + shlex.quote(value[2:])
    return shlex.quote(value)


def render(script: str, step: str, action: str, values: Mapping[str, str]) -> str:
    """The command string for one action of one step script."""
    header = "".join(f"{name}={shell_value(value)}\n" for name, value in sorted(values.items()))
    body = "\n".join(
        [
            f"STEP={shlex.quote(step)}",
            header,
            (SCRIPTS / "lib.sh").read_text(),
            (SCRIPTS / script).read_text(),
        ]
    )
    return f"bash -c {shlex.quote(body)} {shlex.quote(step)} {action}"


@dataclass
class Machine:
    """Where the steps run: the SSH connection every step shares."""

    host: str
    user: str
    port: int
    private_key: pulumi.Output[str] | None = None
    host_key: str | None = None

    def connection(self) -> command.remote.ConnectionArgs:
        return command.remote.ConnectionArgs(
            host=self.host,
            user=self.user,
            port=self.port,
            private_key=self.private_key,
            host_key=self.host_key,
            # A freshly booted or briefly unreachable machine: keep dialling for about five minutes.
            dial_error_limit=30,
            per_dial_timeout=10,
        )


@dataclass
class Step:
    """One remote step: its script, plain values, optional secret stdin and what it waits for."""

    name: str
    script: str
    values: Mapping[str, pulumi.Input[str]]
    stdin: pulumi.Input[str] | None = None
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)
    # Where the step's effect lives: a change here must delete the old one first, not update it.
    location: Sequence[str] = field(default_factory=list)


def remote_step(machine: Machine, step: Step, parent: pulumi.Resource) -> command.remote.Command:
    carries_secret = step.stdin is not None
    # Output.all of no values resolves to a list, not a mapping.
    values = pulumi.Output.all(**step.values) if step.values else pulumi.Output.from_input({})
    return command.remote.Command(
        step.name,
        connection=machine.connection(),
        create=values.apply(lambda plain: render(step.script, step.name, "create", plain)),
        delete=values.apply(lambda plain: render(step.script, step.name, "delete", plain)),
        stdin=step.stdin,
        triggers=list(step.location) or None,
        # The provider would otherwise send PULUMI_COMMAND_STDOUT as an SSH environment request,
        # which a stock sshd (AcceptEnv LANG LC_*) refuses, failing every update and delete.
        add_previous_output_in_env=False,
        logging=command.remote.Logging.NONE if carries_secret else command.remote.Logging.STDOUT_AND_STDERR,
        opts=pulumi.ResourceOptions(
            parent=parent,
            depends_on=list(step.depends_on),
            # Replacing a step must undo the old one before redoing it: create-before-delete
            # would let the old delete remove what the new create just wrote.
            delete_before_replace=True,
            # Scripts never print a secret on stdout (the start step reads the store step's), but
            # a failing tool's message on stderr might echo what it was given.
            additional_secret_outputs=["stderr"] if carries_secret else None,
        ),
    )
