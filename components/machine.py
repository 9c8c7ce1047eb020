"""Where the machine-side steps run, and how each step becomes a pulumi-command resource.

A step is a real script in `remote/` (lintable, `set -euo pipefail`). Its command string is that
script behind a rendered header of plain values; secrets travel on stdin only. Each step runs as
`bash -c '<header + lib.sh + script>' <step> create|delete`, in a fresh non-login shell: over SSH
on a remote machine (`SshMachine`), or on the machine running `pulumi up`, as the user running it
(`LocalMachine`). The scripts cannot tell the two apart.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_command as command

from components.host_key import HostKeyCheck, verified_host_key

if TYPE_CHECKING:
    from components.settings import Settings

SCRIPTS = Path(__file__).resolve().parent / "remote"


def shell_value(value: str) -> str:
    """A single-quoted shell word; a leading `~/` becomes `"$HOME"/` so it expands on the machine."""
    if value.startswith("~/"):
        return '"$HOME"/' + shlex.quote(value[2:])
    return shlex.quote(value)


def script_text(script: str, step: str, values: Mapping[str, str]) -> str:
    """A script of `remote/` behind its header of values and lib.sh, whole: what a step runs, or a
    file a step writes for something else to run (the keeper)."""
    header = "".join(f"{name}={shell_value(value)}\n" for name, value in sorted(values.items()))
    return "\n".join(
        [
            f"STEP={shlex.quote(step)}",
            header,
            (SCRIPTS / "lib.sh").read_text(),
            (SCRIPTS / script).read_text(),
        ]
    )


def render(script: str, step: str, action: str, values: Mapping[str, str]) -> str:
    """The command string for one action of one step script."""
    return f"bash -c {shlex.quote(script_text(script, step, values))} {shlex.quote(step)} {action}"


@dataclass
class Step:
    """One machine step: its script, plain values, optional secret stdin and what it waits for."""

    name: str
    script: str
    values: Mapping[str, pulumi.Input[str]]
    stdin: pulumi.Input[str] | None = None
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)
    # Where the step's effect lives: a change here must delete the old one first, not update it.
    location: Sequence[str] = field(default_factory=list)
    # Whether its stdout goes to the CLI's display too (a key's base64 is no progress to show).
    shows_stdout: bool = True


@dataclass
class CommandSpec:
    """What both kinds of command take: the rendered actions, stdin and how quiet to be."""

    create: pulumi.Input[str]
    delete: pulumi.Input[str]
    stdin: pulumi.Input[str] | None
    triggers: list[str] | None
    quiet: bool
    shows_stdout: bool
    # The machine's first step, which every other is tied to (see machine_step).
    anchor: pulumi.Resource | None = None

    def arguments(self, logging: type[command.local.Logging] | type[command.remote.Logging]) -> dict[str, Any]:
        level = logging.NONE if self.quiet else (logging.STDOUT_AND_STDERR if self.shows_stdout else logging.STDERR)
        return {
            "create": self.create,
            "delete": self.delete,
            "stdin": self.stdin,
            "triggers": self.triggers,
            # The provider would otherwise pass the previous stdout in PULUMI_COMMAND_STDOUT: over SSH
            # as an environment request, which a stock sshd (AcceptEnv LANG LC_*) refuses, failing
            # every update and delete; and the scripts read nothing from it anyway.
            "add_previous_output_in_env": False,
            "logging": self.anchor.urn.apply(lambda _: level) if self.anchor else level,
        }


@dataclass
class SshMachine:
    """A Linux machine reached over SSH: the connection every step shares."""

    host: str
    user: str
    port: int
    private_key: pulumi.Output[str] | None = None
    private_key_passphrase: pulumi.Output[str] | None = None
    host_key: str | None = None
    # Gone for good (machineGone): destroy forgets the steps instead of reaching it to undo them.
    gone: bool = False
    first_step: pulumi.Resource | None = None

    @property
    def identity(self) -> str:
        """Which machine and account the steps live in: a change moves them."""
        return f"{self.user}@{self.host}:{self.port}"

    def command(self, name: str, spec: CommandSpec, opts: pulumi.ResourceOptions) -> command.remote.Command:
        return command.remote.Command(
            name,
            connection=command.remote.ConnectionArgs(
                host=self.host,
                user=self.user,
                port=self.port,
                private_key=self.private_key,
                private_key_password=self.private_key_passphrase,
                host_key=self.host_key,
                # A machine still booting or briefly unreachable: keep dialling, about two minutes in
                # all when the port refuses (113 s measured), longer when each dial times out.
                dial_error_limit=30,
                per_dial_timeout=10,
            ),
            **spec.arguments(command.remote.Logging),
            # A step that ran on this machine itself before (host localhost) is the same step, so
            # the move replaces it, the old one's undo first, rather than undoing it after the new create.
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(aliases=[pulumi.Alias(type_="command:local:Command")])
            ),
        )


@dataclass
class LocalMachine:
    """The machine running `pulumi up`, as the user running it: no SSH, no key."""

    gone: bool = False
    first_step: pulumi.Resource | None = None
    identity: str = "localhost"

    def command(self, name: str, spec: CommandSpec, opts: pulumi.ResourceOptions) -> command.local.Command:
        # A step that ran over SSH before: replaced, its undo run first over its old connection.
        moved_here = pulumi.ResourceOptions(aliases=[pulumi.Alias(type_="command:remote:Command")])
        return command.local.Command(
            name, **spec.arguments(command.local.Logging), opts=pulumi.ResourceOptions.merge(opts, moved_here)
        )


Machine = SshMachine | LocalMachine


def anchored(machine: Machine, first_step: pulumi.Resource) -> Machine:
    """The machine whose every later step is tied to its first, so that a move undoes them all
    before the first runs again on the new machine (see machine_step)."""
    return dataclasses.replace(machine, first_step=first_step)


def machine_for(settings: Settings) -> Machine:
    """The machine the settings name: this one (a local `host`) or one reached over SSH, with the
    host key it must offer."""
    if settings.runs_locally:
        return LocalMachine(gone=settings.machine_gone)
    host_key = verified_host_key(
        HostKeyCheck(
            host=settings.host,
            port=settings.ssh_port,
            user=settings.ssh_user,
            pinned=settings.ssh_host_key,
            accepts_any=settings.ssh_accept_any_host_key,
            gone=settings.machine_gone,
            known_hosts=Path.home() / ".ssh" / "known_hosts",
        )
    )
    return SshMachine(
        host=settings.host,
        user=settings.ssh_user,
        port=settings.ssh_port,
        private_key=settings.ssh_private_key,
        private_key_passphrase=settings.ssh_private_key_passphrase,
        host_key=host_key,
        gone=settings.machine_gone,
    )


def machine_step(
    machine: Machine, step: Step, parent: pulumi.Resource
) -> command.remote.Command | command.local.Command:
    carries_secret = step.stdin is not None
    # Output.all of no values resolves to a list, not a mapping.
    values = pulumi.Output.all(**step.values) if step.values else pulumi.Output.from_input({})
    return machine.command(
        step.name,
        CommandSpec(
            create=values.apply(lambda plain: render(step.script, step.name, "create", plain)),
            delete=values.apply(lambda plain: render(step.script, step.name, "delete", plain)),
            stdin=step.stdin,
            triggers=list(step.location) or None,
            quiet=carries_secret,
            shows_stdout=step.shows_stdout,
            anchor=machine.first_step,
        ),
        pulumi.ResourceOptions(
            parent=parent,
            depends_on=list(step.depends_on),
            # Replacing a step must undo the old one before redoing it: create-before-delete
            # would let the old delete remove what the new create just wrote.
            delete_before_replace=True,
            # The provider takes a new connection as an update: the new machine's create would run
            # and the old machine's step never be undone. A step that moves is replaced, its undo run
            # over the connection its state holds. (A step made before this trigger existed has none
            # in its state, which the engine takes as no change.)
            replacement_trigger=machine.identity,
            # And every step undone before any runs on the new machine (which may be this one, in the
            # same home): when a replacement undoes a step first (the first step, on a move), the
            # engine first undoes, last first, the steps whose old inputs came from it and that such
            # a change would replace. `logging`, which never changes otherwise, carries that tie to
            # the first step, and only to it: a step replaced for another reason (the install, for
            # a new condorVersion) undoes no others.
            replace_on_changes=["logging"],
            retain_on_delete=machine.gone,
            # Scripts never print a secret on stdout (the start step reads the store step's), but
            # a failing tool's message on stderr might echo what it was given.
            additional_secret_outputs=["stderr"] if carries_secret else None,
        ),
    )
