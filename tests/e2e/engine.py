"""The machine-side program under the real Pulumi engine: CLI, Python language host and command
provider, driven through the Automation API with a local file backend.

`.ci/engine` provides the three (PULUMI_ENGINE_BIN); tests/engine/machine_side is the program. What
the engine did is read from its own results: the change summary, each resource's operation from the
engine's events, `stack export`.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi import automation

from components.host_key import known_hosts_name
from tests.e2e.machine import SSH_HOST, Machine, TarballServer, host_key_line
from tests.e2e.release import tarball_path
from tests.engine.cli import ENGINE_TOOLS, PASSPHRASE, engine_bin
from tests.harness import ROOT

MACHINE_PROGRAM = ROOT / "tests" / "engine" / "machine_side"
ACCOUNT_ID = "123456789012"
SECRET_ACCESS_KEY = "SENTINEL-engine-aws-secret-key-91c2"
ACCESS_KEY_ID = "AKIAENGINETEST000001"
ENGINE_POOL_PASSWORD = "SENTINEL-engine-pool-password-3e8d"


def by_region(regions: list[str]) -> dict[str, dict[str, str]]:
    """Each region's AWS ids as the project's `byRegion` output gives them."""
    return {
        region: {
            "bucketName": f"condor-annex-config-{region}-0a1b2c3d",
            "securityGroupId": "sg-0123456789abcdef0",
            "odiLeaseFunctionArn": f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:HTCondorAnnex-odiLease",
            "sfrLeaseFunctionArn": f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:HTCondorAnnex-sfrLease",
            "instanceProfileArn": f"arn:aws:iam::{ACCOUNT_ID}:instance-profile/annex-instance-{region}",
            "annexImageId": "ami-0a1b2c3d4e5f60718",
        }
        for region in regions
    }


@dataclass
class Run:
    """One engine operation: what it printed, and each resource's operation by name."""

    ops: dict[str, str] = field(default_factory=dict)
    error: str = ""
    # Each line the CLI printed, with when it printed it (seconds from the start).
    lines: list[tuple[float, str]] = field(default_factory=list)
    # What the providers said, the passing status messages the display overwrites among them.
    diagnostics: list[str] = field(default_factory=list)
    # The commands in the order the engine started them, and in the order they finished.
    started: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    # Every operation the engine began, in order: (command, op); a replacement begins two.
    operations: list[tuple[str, str]] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def changed(self) -> dict[str, str]:
        """The commands the engine did something to (anything but `same`), by name."""
        return {name: op for name, op in self.ops.items() if op != "same"}


@dataclass
class EngineStack:
    stack: automation.Stack
    state: Path

    def _run(self, operation: str, **kwargs: Any) -> Run:
        run = Run()
        started = time.monotonic()

        def on_output(line: str) -> None:
            run.lines.append((time.monotonic() - started, line))

        def on_event(event: automation.EngineEvent) -> None:
            pre = event.resource_pre_event
            if pre and pre.metadata.type.startswith("command:"):
                run.ops[pre.metadata.urn.rsplit("::", 1)[-1]] = pre.metadata.op.value
                run.started.append(pre.metadata.urn.rsplit("::", 1)[-1])
                run.operations.append((pre.metadata.urn.rsplit("::", 1)[-1], pre.metadata.op.value))
            done = event.res_outputs_event
            if done and done.metadata.type.startswith("command:"):
                run.finished.append(done.metadata.urn.rsplit("::", 1)[-1])
            if event.diagnostic_event:
                run.diagnostics.append(event.diagnostic_event.message)

        try:
            getattr(self.stack, operation)(on_output=on_output, on_event=on_event, **kwargs)
        except automation.errors.CommandError as error:
            run.error = str(error)
        return run

    def up(self) -> Run:
        return self._run("up")

    def preview(self, **kwargs: Any) -> Run:
        return self._run("preview", **kwargs)

    def refresh(self, **kwargs: Any) -> Run:
        return self._run("refresh", **kwargs)

    def destroy(self, **kwargs: Any) -> Run:
        return self._run("destroy", **kwargs)

    def set(self, config: Mapping[str, str | None], secret: tuple[str, ...] = ()) -> None:
        for key, value in config.items():
            if value is None:
                self.stack.remove_config(key)
            else:
                self.stack.set_config(key, automation.ConfigValue(value=value, secret=key in secret))

    def regions(self, regions: list[str]) -> None:
        self.set({"condor-annex:regions": json.dumps(regions), "aws-side:byRegion": json.dumps(by_region(regions))})

    def _command(self, *args: str) -> tuple[list[str], dict[str, Any]]:
        """A CLI command as a user types it, in the project, on this stack: its argv and where it runs."""
        workspace = self.stack.workspace
        argv = [workspace.pulumi_command.command, *args, "--non-interactive", "--stack", self.stack.name]
        return argv, {"cwd": workspace.work_dir, "env": {**os.environ, **workspace.env_vars}, "text": True}

    def popen(self, *args: str, in_namespace: str | None = None) -> subprocess.Popen:
        """The CLI itself, as a user runs it in a terminal, in a process the test can kill (and in a
        network namespace of its own, if given)."""
        argv, where = self._command(*args)
        prefix = ["ip", "netns", "exec", in_namespace] if in_namespace else []
        return subprocess.Popen([*prefix, *argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **where)

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """One CLI command, run to its end."""
        argv, where = self._command(*args)
        return subprocess.run(argv, capture_output=True, timeout=600, check=False, **where)

    def export(self) -> str:
        """`pulumi stack export` as a user runs it (the Automation API's own export shows secrets)."""
        exported = self.cli("stack", "export")
        assert exported.returncode == 0, exported.stderr
        return exported.stdout

    def pending_operations(self) -> list[dict[str, Any]]:
        return json.loads(self.export())["deployment"].get("pending_operations") or []

    def stored(self) -> str:
        """Every file the state backend holds: the stack, its backups and its history."""
        return "".join(path.read_text() for path in sorted(self.state.rglob("*.json")))

    def resources(self) -> list[dict[str, Any]]:
        return json.loads(self.export())["deployment"].get("resources") or []


def remember_host_key(home: Path, host: str, port: int, public_key: Path, hashed: bool = False) -> None:
    """Record a host key in home's ~/.ssh/known_hosts as OpenSSH does, hashed as with HashKnownHosts."""
    known_hosts = home / ".ssh" / "known_hosts"
    known_hosts.parent.mkdir(mode=0o700, exist_ok=True)
    with known_hosts.open("a") as file:
        file.write(f"{known_hosts_name(host, port)} {host_key_line(public_key)}\n")
    if hashed:
        subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(known_hosts)], check=True, capture_output=True)
        Path(f"{known_hosts}.old").unlink()


def cli_run_by(machine: Machine, workdir: Path) -> tuple[str, Path, dict[str, str]]:
    """The engine's tools copied where the machine's user may run them (root's cache is closed to
    it), a CLI root whose `pulumi` runs that copy as the user (tests/e2e/pulumi_as_user.sh behind its
    values), and the user's names for the environment; workdir (project, state, Pulumi home) becomes
    the user's."""
    tools = workdir / "engine"
    tools.mkdir()
    for tool in ENGINE_TOOLS:
        shutil.copy2(Path(engine_bin(), tool), tools / tool)
    cli = workdir / "cli" / "bin" / "pulumi"
    cli.parent.mkdir(parents=True)
    values = {
        "PULUMI_AS_USER": machine.user,
        "PULUMI_REAL_CLI": tools / "pulumi",
        "PULUMI_HOME": workdir / "pulumi-home",
    }
    header = "".join(f"{name}={shlex.quote(str(value))}\n" for name, value in values.items())
    cli.write_text("#!/usr/bin/env bash\n" + header + Path(__file__).with_name("pulumi_as_user.sh").read_text())
    cli.chmod(0o755)
    subprocess.run(["chown", "-R", machine.user, str(workdir)], check=True)
    return str(tools), workdir / "cli", {"USER": machine.user, "LOGNAME": machine.user}


def engine_stack(
    workdir: Path,
    machine: Machine,
    tarballs: TarballServer,
    version: str,
    port: int,
    known_host_key: Path | None = None,
    hashed: bool = False,
    knows_host: bool = True,
    run_by: Machine | None = None,
    **config: str,
) -> EngineStack:
    """A new stack of the machine-side program in a copy of it under workdir, over SSH to the test's
    sshd, with its own state backend and Pulumi home. workdir is the home of the user running it:
    its ~/.ssh/known_hosts holds `known_host_key` (by default the sshd's own) for the host and port
    the stack reaches, hashed or not, unless it `knows_host` not. With `run_by`, the CLI runs as that
    machine's user, in its home (which only a pinned sshHostKey then spares a known_hosts entry)."""
    project = workdir / "project"
    project.mkdir(parents=True)
    shutil.copy(MACHINE_PROGRAM / "__main__.py", project / "__main__.py")
    (project / "Pulumi.yaml").write_text(
        (MACHINE_PROGRAM / "Pulumi.yaml").read_text().replace("../../../.venv", str(ROOT / ".venv"))
    )
    (workdir / "state").mkdir()
    bin_dir, cli_root, as_user = (
        cli_run_by(run_by, workdir) if run_by else (engine_bin(), Path(engine_bin()).parent, {})
    )
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(run_by.home if run_by else workdir),
        **as_user,
        "PULUMI_HOME": str(workdir / "pulumi-home"),
        "PULUMI_BACKEND_URL": f"file://{workdir / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PYTHONPATH": str(ROOT),
        # No SSH agent: the key in the config is the only way in, as for a user with none.
        "SSH_AUTH_SOCK": "",
    }
    workspace = automation.LocalWorkspace(
        work_dir=str(project),
        env_vars=env,
        pulumi_home=env["PULUMI_HOME"],
        pulumi_command=automation.PulumiCommand(root=str(cli_root), skip_version_check=True),
    )
    stack = EngineStack(automation.Stack.create("dev", workspace), workdir / "state")
    stack.set(
        {
            "aws:region": "us-east-1",
            "condor-annex:host": SSH_HOST,
            "condor-annex:sshPort": str(machine.port),
            "condor-annex:sshUser": machine.user,
            "condor-annex:sshPrivateKey": machine.client_key.read_text(),
            "condor-annex:condorVersion": version,
            "condor-annex:condorTarballUrl": tarballs.url(tarball_path(version)),
            "condor-annex:collectorPort": str(port),
            "condor-annex:poolPassword": ENGINE_POOL_PASSWORD,
            "aws-side:accessKeyId": ACCESS_KEY_ID,
            "aws-side:secretAccessKey": SECRET_ACCESS_KEY,
            **config,
        },
        secret=("condor-annex:sshPrivateKey", "condor-annex:poolPassword", "aws-side:secretAccessKey"),
    )
    stack.regions(["us-east-1"])
    host = config.get("condor-annex:host", SSH_HOST)
    ssh_port = int(config.get("condor-annex:sshPort", machine.port))
    if knows_host:
        remember_host_key(workdir, host, ssh_port, known_host_key or machine.host_key, hashed)
    return stack
