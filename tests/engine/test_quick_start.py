"""The README's quick start under the real Pulumi CLI, the real Python language host and the real
command provider, with the real Pulumi.yaml / Pulumi.dev.yaml and the project's virtualenv.

Only the CLI can show what it does with our project before the program runs: it treats a key that
Pulumi.yaml declares without a default as required, checks declared types and secrecy, and stops
there. Here the quick start must get past that, through the program, and stop only where no engine
on this machine can go on: the AWS provider plugin, which no registry here serves. A preview never
runs a command, so nothing here reaches the machine the config names.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.engine.cli import PASSPHRASE, engine_bin
from tests.harness import HOST_KEY, ROOT, ssh_private_key_pem

AWS_PLUGIN_VERSION = importlib.metadata.version("pulumi_aws")
CONFIG_REFUSED = ("missing configuration value", "must be of type", "must be encrypted", "invalid stack configuration")

# The machine Pulumi.dev.yaml names.
DEV_HOST = "203.0.113.7"
PROJECT_FILES = ["Pulumi.yaml", "Pulumi.dev.yaml", "__main__.py", "requirements.txt", "components", "lambda_src"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project as a user clones it, with the project's virtualenv."""
    copy = tmp_path / "condor-annex"
    copy.mkdir()
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, copy / name)
    (copy / ".venv").symlink_to(ROOT / ".venv")
    return copy


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {
        "PATH": f"{engine_bin()}:{os.environ['PATH']}",
        "HOME": str(home),
        "PULUMI_HOME": str(home / ".pulumi"),
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        # Nothing is downloaded: a missing plugin is reported as missing, at once.
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "AWS_REGION": "us-east-1",
    }


def pulumi(project: Path, env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["pulumi", *args, "--non-interactive"],
        cwd=project,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def quick_start(project: Path, env: dict[str, str], logged_in_before: bool = True) -> None:
    """The README's first command, one command at a time, as far as `pulumi up`. `login --local`
    keeps state under the account's home from the password database, whatever HOME says, so the
    test logs in to the same kind of backend in a directory of its own. The user has logged in to
    the machine with ssh before, as the README asks: its host key is in their known_hosts."""
    home = Path(env["HOME"])
    if logged_in_before:
        (home / ".ssh").mkdir(mode=0o700)
        (home / ".ssh" / "known_hosts").write_text(f"{DEV_HOST} {HOST_KEY}\n")
    state = home / "state"
    state.mkdir()
    for args, stdin in [
        (("login", f"file://{state}"), None),
        (("stack", "init", "dev"), None),
        (("config", "set", "--secret", "poolPassword"), "a-pool-password-of-the-lab\n"),
        (("config", "set", "--secret", "sshPrivateKey"), ssh_private_key_pem()),
    ]:
        result = pulumi(project, env, *args, stdin=stdin)
        assert result.returncode == 0, f"pulumi {' '.join(args)}: {result.stdout}{result.stderr}"


def errors(said: str) -> list[str]:
    """The resources the CLI reports an error for, as `<type> (<name>): <error>`."""
    found = []
    lines = said.splitlines()
    for line, following in itertools.pairwise(lines):
        if line.startswith("  ") and line.strip().endswith("):") and following.strip().startswith("error:"):
            found.append(f"{line.strip()[:-1]}: {following.strip()[len('error: ') :]}")
    return found


def assert_stops_only_for_the_aws_plugin(said: str, command_kind: str) -> None:
    """The program ran: it registered the machine's preflight first (previewed by the real command
    provider, never run), and the one thing that failed is the first region's AWS provider, for want
    of its plugin, which no registry here serves."""
    assert not any(words in said for words in CONFIG_REFUSED), f"the CLI refused the quick start's config: {said}"
    assert f"+  command:{command_kind}:Command preflight create" in said, said
    assert errors(said) == [
        "pulumi:providers:aws (aws-us-east-1): no resource plugin 'pulumi-resource-aws' found in the workspace"
        f" at version v{AWS_PLUGIN_VERSION} or on your $PATH"
    ], said


def test_the_quick_start_previews_up_to_the_aws_plugin(project: Path, cli_env: dict[str, str]):
    quick_start(project, cli_env)
    preview = pulumi(project, cli_env, "preview")
    assert preview.returncode != 0
    assert_stops_only_for_the_aws_plugin(preview.stdout + preview.stderr, "remote")


def test_the_quick_start_on_the_machine_itself_previews_up_to_the_aws_plugin(project: Path, cli_env: dict[str, str]):
    """The README's way for the submit machine itself: host localhost, no sshUser, no SSH key."""
    quick_start(project, cli_env)
    for args in [
        ("config", "set", "host", "localhost"),
        ("config", "rm", "sshUser"),
        ("config", "rm", "sshPrivateKey"),
        ("config", "set", "--path", "condorIngressCidrs[0]", "203.0.113.7/32"),
        ("config", "set", "--path", "sshIngressCidrs[0]", "203.0.113.7/32"),
    ]:
        result = pulumi(project, cli_env, *args)
        assert result.returncode == 0, f"pulumi {' '.join(args)}: {result.stdout}{result.stderr}"
    preview = pulumi(project, cli_env, "preview")
    assert preview.returncode != 0
    assert_stops_only_for_the_aws_plugin(preview.stdout + preview.stderr, "local")


def test_a_machine_never_logged_in_to_stops_the_preview_with_the_command_that_records_its_key(
    project: Path, cli_env: dict[str, str]
):
    """Its host key is in no known_hosts: the CLI shows why nothing was previewed, and what to run."""
    quick_start(project, cli_env, logged_in_before=False)
    preview = pulumi(project, cli_env, "preview")
    said = preview.stdout + preview.stderr
    assert preview.returncode != 0 and "+  command:remote:Command preflight create" not in said
    assert f"HostKeyError: the host key of {DEV_HOST} port 22 is not in" in said, said
    assert f"ssh -p 22 alice@{DEV_HOST} true" in said, said


def test_a_missing_required_key_is_still_refused_by_the_cli(project: Path, cli_env: dict[str, str]):
    """The control: the same CLI does refuse a config that lacks a required key."""
    quick_start(project, cli_env)
    assert pulumi(project, cli_env, "config", "rm", "host").returncode == 0
    said = "".join(pulumi(project, cli_env, "preview").__dict__[stream] for stream in ("stdout", "stderr"))
    assert "missing configuration value 'host'" in said, said


def test_machine_gone_as_the_readme_sets_it_passes_the_clis_validation(project: Path, cli_env: dict[str, str]):
    """Pulumi.yaml declares machineGone a boolean: the README's `config set machineGone true` must
    pass the CLI's type check and the program's own."""
    quick_start(project, cli_env)
    assert pulumi(project, cli_env, "config", "set", "machineGone", "true").returncode == 0
    preview = pulumi(project, cli_env, "preview")
    assert_stops_only_for_the_aws_plugin(preview.stdout + preview.stderr, "remote")


def test_join_stack_as_the_readme_sets_it_passes_the_clis_validation(project: Path, cli_env: dict[str, str]):
    """Pulumi.yaml declares joinStack a string with the default "": set as the README sets it, the
    CLI and the program take it, and the program goes on to ask AWS for the setup it joins."""
    quick_start(project, cli_env)
    assert pulumi(project, cli_env, "config", "set", "joinStack", "condor-annex/alice").returncode == 0
    preview = pulumi(project, cli_env, "preview")
    assert_stops_only_for_the_aws_plugin(preview.stdout + preview.stderr, "remote")
