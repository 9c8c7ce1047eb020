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

from components.previous_up import READ_ATTEMPTS
from tests.engine.cli import PASSPHRASE, engine_bin
from tests.engine.sidecar import EmptiedSidecar
from tests.harness import HOST_KEY, ROOT

AWS_PLUGIN_VERSION = importlib.metadata.version("pulumi_aws")
CONFIG_REFUSED = ("missing configuration value", "must be of type", "must be encrypted", "invalid stack configuration")

# The machine Pulumi.dev.yaml names.
DEV_HOST = "203.0.113.7"
PROJECT_FILES = [
    "Pulumi.yaml",
    "Pulumi.dev.yaml",
    "__main__.py",
    "requirements.txt",
    "requirements.lock",
    "components",
    "lambda_src",
]
# The user following the quick start, whose stack is named after them.
USER = "alice"
# The README's deploy commands, word for word (tests/test_readme.py holds the README to them).
README_QUICK_START = [
    "python3 -m venv .venv && .venv/bin/pip install -r requirements.lock",
    'export PULUMI_BACKEND_URL="file://$HOME/.condor-annex" && mkdir -p "$HOME/.condor-annex"',
    'cp -n Pulumi.dev.yaml "Pulumi.$USER.yaml" && "${EDITOR:-nano}" "Pulumi.$USER.yaml"',
    'pulumi stack select --create "$USER"',
    "pulumi config set --secret poolPassword",
    "pulumi preview",
    "pulumi up",
]
POOL_PASSWORD = "a-pool-password-of-the-lab"


def project_copy(tmp_path: Path) -> Path:
    """The project as a user clones it."""
    copy = tmp_path / "condor-annex"
    copy.mkdir()
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, copy / name)
    return copy


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project as a user clones it, with the project's virtualenv."""
    copy = project_copy(tmp_path)
    (copy / ".venv").symlink_to(ROOT / ".venv")
    return copy


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {
        "PATH": f"{engine_bin()}:{os.environ['PATH']}",
        "HOME": str(home),
        "USER": USER,
        # The user's edit: the example's machine is the one these tests name.
        "EDITOR": "true",
        # What the README's `export` sets, for the commands each test runs after it.
        "PULUMI_BACKEND_URL": f"file://{home}/.condor-annex",
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


def typed(project: Path, env: dict[str, str], lines: list[str]) -> list[tuple[str, int, str]]:
    """Lines typed into one shell in the project, as a user types them: each line, its exit status
    and what it printed. The password prompt reads its answer from the terminal (stdin here); a
    confirmation prompt is answered yes (PULUMI_SKIP_CONFIRMATIONS)."""
    script = "".join(f"echo '>>> {index}'\n{line}\necho \"<<< {index} $?\"\n" for index, line in enumerate(lines))
    ran = subprocess.run(
        ["bash", "-c", script],
        cwd=project,
        env={**env, "PULUMI_SKIP_CONFIRMATIONS": "true"},
        input=f"{POOL_PASSWORD}\n",
        stdout=subprocess.PIPE,
        # As a terminal shows them: both streams, in order.
        stderr=subprocess.STDOUT,
        text=True,
        timeout=900,
        check=False,
    )
    said = ran.stdout
    results = []
    for index, line in enumerate(lines):
        output = ran.stdout.split(f">>> {index}\n", 1)[1].split(f"<<< {index} ", 1)
        results.append((line, int(output[1].split("\n", 1)[0]), output[0]))
    assert len(results) == len(lines), said
    return results


def quick_start(project: Path, env: dict[str, str], logged_in_before: bool = True) -> None:
    """The README's quick start as far as `pulumi preview`, word for word, in a project with its
    virtualenv already made. The user has logged in to the machine with ssh before, as the README
    asks: its host key is in their known_hosts."""
    home = Path(env["HOME"])
    if logged_in_before:
        (home / ".ssh").mkdir(mode=0o700)
        (home / ".ssh" / "known_hosts").write_text(f"{DEV_HOST} {HOST_KEY}\n")
    for line, status, output in typed(project, env, README_QUICK_START[1:5]):
        assert status == 0, f"{line}: {output}"


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
    provider, never run), and the one thing that failed is an AWS provider (the region's or the
    account's, whichever the engine reached first), for want of its plugin, which no registry here
    serves."""
    assert not any(words in said for words in CONFIG_REFUSED), f"the CLI refused the quick start's config: {said}"
    assert f"+  command:{command_kind}:Command preflight create" in said, said
    missing_plugin = (
        "no resource plugin 'pulumi-resource-aws' found in the workspace"
        f" at version v{AWS_PLUGIN_VERSION} or on your $PATH"
    )
    assert errors(said) in (
        [f"pulumi:providers:aws (aws-us-east-1): {missing_plugin}"],
        [f"pulumi:providers:aws (aws-account): {missing_plugin}"],
    ), said


def test_the_readmes_deploy_commands_word_for_word_run_up_to_the_aws_plugin(tmp_path: Path, cli_env: dict[str, str]):
    """From a fresh clone: the virtualenv made from requirements.lock, the stack named for the user
    with its own copy of the example, and the preview and the up each as far as the AWS plugin."""
    home = Path(cli_env["HOME"])
    (home / ".ssh").mkdir(mode=0o700)
    (home / ".ssh" / "known_hosts").write_text(f"{DEV_HOST} {HOST_KEY}\n")
    clone = project_copy(tmp_path)
    results = typed(clone, cli_env, README_QUICK_START)
    for line, status, output in results[:5]:
        assert status == 0, f"{line}: {output}"
    assert (clone / f"Pulumi.{USER}.yaml").read_text().startswith((ROOT / "Pulumi.dev.yaml").read_text())
    for line, status, output in results[5:]:
        assert status != 0, line
        assert_stops_only_for_the_aws_plugin(output, "remote")
    # Every line again: each can be run twice, and the user's edited stack file is kept.
    (clone / f"Pulumi.{USER}.yaml").write_text((clone / f"Pulumi.{USER}.yaml").read_text() + "# edited\n")
    again = typed(clone, cli_env, README_QUICK_START[1:5])
    assert all(status == 0 for _, status, _ in again), again
    assert (clone / f"Pulumi.{USER}.yaml").read_text().endswith("# edited\n")


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
        ("config", "set", "--path", "condorIngressCidrs[0]", "203.0.113.7/32"),
        ("config", "set", "--path", "sshIngressCidrs[0]", "203.0.113.7/32"),
    ]:
        result = pulumi(project, cli_env, *args)
        assert result.returncode == 0, f"pulumi {' '.join(args)}: {result.stdout}{result.stderr}"
    preview = pulumi(project, cli_env, "preview")
    assert preview.returncode != 0
    assert_stops_only_for_the_aws_plugin(preview.stdout + preview.stderr, "local")


def test_a_runner_that_never_logged_in_to_the_machine_previews_and_its_up_is_refused(
    project: Path, cli_env: dict[str, str]
):
    """As .github/workflows/preview.yml runs it: a fresh runner, no known_hosts, no SSH agent. The
    preview runs the whole program, warning that the key is unknown; an up there stops before
    anything, with the command that records the key."""
    runner = {**cli_env, "SSH_AUTH_SOCK": ""}
    quick_start(project, runner, logged_in_before=False)
    preview = pulumi(project, runner, "preview")
    said = preview.stdout + preview.stderr
    assert_stops_only_for_the_aws_plugin(said, "remote")
    assert f"the host key of {DEV_HOST} port 22 is not in" in said and "`pulumi up` will refuse" in said, said
    assert f"ssh -p 22 alice@{DEV_HOST} true" in said, said
    up = pulumi(project, runner, "up", "--yes", "--skip-preview")
    said = up.stdout + up.stderr
    assert up.returncode != 0 and "preflight create" not in said, said
    assert f"error: the host key of {DEV_HOST} port 22 is not in" in said and "Traceback" not in said, said
    assert f"ssh -p 22 alice@{DEV_HOST} true" in said, said


def test_a_config_error_is_one_line_naming_the_key_without_a_traceback(project: Path, cli_env: dict[str, str]):
    quick_start(project, cli_env)
    assert pulumi(project, cli_env, "config", "set", "--secret", "poolPassword", "short").returncode == 0
    preview = pulumi(project, cli_env, "preview")
    said = preview.stdout + preview.stderr
    assert preview.returncode != 0 and "Traceback" not in said, said
    assert "condor-annex:poolPassword" in said, said


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
    assert pulumi(project, cli_env, "config", "set", "joinStack", "condor-annex/bob").returncode == 0
    preview = pulumi(project, cli_env, "preview")
    assert_stops_only_for_the_aws_plugin(preview.stdout + preview.stderr, "remote")


def stack_file(backend: Path) -> Path:
    """The user's stack's checkpoint in a file backend rooted at `backend`."""
    return backend / ".pulumi" / "stacks" / "condor-annex" / f"{USER}.json"


# The README's way to move a stack to a shared backend ("Day two"), word for word but the backend's
# URL, which is a directory here instead of an S3 bucket.
README_SHARE_THE_STACK = [
    'pulumi stack export --file "$USER.json"',
    "export PULUMI_BACKEND_URL=s3://bucket/prefix",
    'pulumi stack select --create "$USER"',
    'pulumi stack import --file "$USER.json"',
]


def test_a_stack_moved_to_a_shared_backend_the_readmes_way_keeps_its_secrets(
    project: Path, cli_env: dict[str, str], tmp_path: Path
):
    """In the shared backend the same stack file decrypts the pool password with the same
    passphrase, and the program runs as before."""
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert all(f"`{command}`" in readme for command in README_SHARE_THE_STACK), "the README's way changed"
    quick_start(project, cli_env)
    shared = tmp_path / "shared-backend"
    shared.mkdir()
    lines = [command.replace("s3://bucket/prefix", f"file://{shared}") for command in README_SHARE_THE_STACK]
    for line, status, output in typed(project, cli_env, lines):
        assert status == 0, f"{line}: {output}"
    in_shared = {**cli_env, "PULUMI_BACKEND_URL": f"file://{shared}"}
    assert stack_file(shared).exists()
    password = pulumi(project, in_shared, "config", "get", "poolPassword")
    assert password.stdout.strip() == POOL_PASSWORD, password.stdout + password.stderr
    preview = pulumi(project, in_shared, "preview")
    assert_stops_only_for_the_aws_plugin(preview.stdout + preview.stderr, "remote")


def stack_sidecar(env: dict[str, str]) -> Path:
    """The `.attrs` sidecar of the stack's checkpoint in the README's file backend."""
    checkpoint = stack_file(Path(env["HOME"], ".condor-annex"))
    sidecar = checkpoint.with_name(f"{checkpoint.name}.attrs")
    assert sidecar.stat().st_size > 0, sidecar
    return sidecar


def test_a_read_of_the_last_ups_outputs_that_meets_the_engine_writing_them_is_tried_again(
    project: Path, cli_env: dict[str, str]
):
    """The program's first read of its own stack finds the checkpoint mid-write, as an up can while
    the engine writes it (tests/engine/sidecar.py): the program reads again and runs through.
    Before the retry, this preview failed with "failed to load checkpoint: EOF"."""
    quick_start(project, cli_env)
    with EmptiedSidecar(stack_sidecar(cli_env), project, failed_reads=1) as sidecar:
        preview = pulumi(project, cli_env, "preview")
    said = preview.stdout + preview.stderr
    assert sidecar.emptied.is_set() and sidecar.reads >= 2, f"the program's reads were not met: {sidecar.reads}"
    assert "failed to load checkpoint" not in said, said
    assert_stops_only_for_the_aws_plugin(said, "remote")


def test_a_stack_whose_checkpoint_stays_unreadable_stops_the_program_in_one_line(
    project: Path, cli_env: dict[str, str]
):
    """A backend that never gives the checkpoint back: after its reads the program stops before
    anything, saying what it could not read and where to look, without a traceback."""
    quick_start(project, cli_env)
    with EmptiedSidecar(stack_sidecar(cli_env), project, failed_reads=None) as sidecar:
        preview = pulumi(project, cli_env, "preview")
    said = preview.stdout + preview.stderr
    assert preview.returncode != 0 and "Traceback" not in said, said
    assert sidecar.reads >= READ_ATTEMPTS, sidecar.reads
    assert (
        f"could not read what this stack's last `pulumi up` exported, {READ_ATTEMPTS} times:" in said
        and "failed to load checkpoint: EOF" in said
        and "PULUMI_BACKEND_URL" in said
    ), said
    assert "preflight create" not in said, said
