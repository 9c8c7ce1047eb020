"""The README's quick start against the real Pulumi CLI and the real Pulumi.yaml / Pulumi.dev.yaml.

Only the CLI can show what it does with our project before the program runs: it treats a key that
Pulumi.yaml declares without a default as required, checks declared types and secrecy, and stops
there. Here the quick start must get past that and into the program. The program then stops where
no engine on this machine can go on: `pulumi-language-python` and the provider plugins are not
published as Go modules the proxy here serves, so `pulumi up` stops at the language plugin, and the
program itself, run in-process through the Automation API, stops at its first resource, the
machine's preflight, for want of the command provider plugin.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import ROOT, ssh_private_key_pem

PROJECT_FILES = ["Pulumi.yaml", "Pulumi.dev.yaml", "__main__.py", "requirements.txt", "components", "lambda_src"]
PASSPHRASE = "engine-test-passphrase"
CONFIG_REFUSED = ("missing configuration value", "must be of type", "must be encrypted", "invalid stack configuration")


def engine_bin() -> str:
    """Where .ci/engine put the CLI; a missing CLI fails the test: it is what the test is about."""
    found = os.environ.get("PULUMI_ENGINE_BIN") or (os.path.dirname(shutil.which("pulumi") or "") or None)
    if not found or not Path(found, "pulumi").exists():
        pytest.fail("no Pulumi CLI: run `bash .ci/engine` (bash .ci/run does) and set PULUMI_ENGINE_BIN to its output")
    return found


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


def quick_start(project: Path, env: dict[str, str]) -> None:
    """The README's first command, one command at a time, as far as `pulumi up`. `login --local`
    keeps state under the account's home from the password database, whatever HOME says, so the
    test logs in to the same kind of backend in a directory of its own."""
    state = Path(env["HOME"]) / "state"
    state.mkdir()
    for args, stdin in [
        (("login", f"file://{state}"), None),
        (("stack", "init", "dev"), None),
        (("config", "set", "--secret", "poolPassword"), "a-pool-password\n"),
        (("config", "set", "--secret", "sshPrivateKey"), ssh_private_key_pem()),
    ]:
        result = pulumi(project, env, *args, stdin=stdin)
        assert result.returncode == 0, f"pulumi {' '.join(args)}: {result.stdout}{result.stderr}"


def test_quick_start_passes_the_clis_config_validation(project: Path, cli_env: dict[str, str]):
    quick_start(project, cli_env)
    up = pulumi(project, cli_env, "up", "--yes")
    said = up.stdout + up.stderr
    assert not any(words in said for words in CONFIG_REFUSED), f"the CLI refused the quick start's config: {said}"
    # Past validation, the CLI loads the language plugin, which no Go module here provides.
    assert up.returncode != 0
    assert "no language plugin 'pulumi-language-python'" in said, said


def test_the_quick_start_on_the_machine_itself_passes_the_clis_config_validation(
    project: Path, cli_env: dict[str, str]
):
    """The README's way for the submit machine itself: host localhost, no sshUser, no SSH key."""
    quick_start(project, cli_env)
    for args in [
        ("config", "set", "host", "localhost"),
        ("config", "rm", "sshUser"),
        ("config", "rm", "sshPrivateKey"),
        ("config", "set", "--path", "condorIngressCidrs[0]", "203.0.113.7/32"),
    ]:
        result = pulumi(project, cli_env, *args)
        assert result.returncode == 0, f"pulumi {' '.join(args)}: {result.stdout}{result.stderr}"
    up = pulumi(project, cli_env, "up", "--yes")
    said = up.stdout + up.stderr
    assert not any(words in said for words in CONFIG_REFUSED), f"the CLI refused the local quick start: {said}"
    assert "no language plugin 'pulumi-language-python'" in said, said


def test_a_missing_required_key_is_still_refused_by_the_cli(project: Path, cli_env: dict[str, str]):
    """The control: the same CLI does refuse a config that lacks a required key."""
    quick_start(project, cli_env)
    assert pulumi(project, cli_env, "config", "rm", "host").returncode == 0
    said = "".join(pulumi(project, cli_env, "preview").__dict__[stream] for stream in ("stdout", "stderr"))
    assert "missing configuration value 'host'" in said, said


# Run in a process of its own: when the engine stops, the in-process program is left blocked in its
# first synchronous invoke (the account check), and that thread would keep pytest from exiting.
IN_PROCESS_PREVIEW = """
import json, os, runpy, sys
from pulumi import automation

project = sys.argv[1]
reached = []

def program():
    os.chdir(project)
    reached.append("program")
    runpy.run_path(os.path.join(project, "__main__.py"), run_name="__main__")
    reached.append("registered")

workspace = automation.LocalWorkspace(work_dir=project, program=program, env_vars=dict(os.environ))
stack = automation.Stack.select("dev", workspace)
try:
    stack.preview()
    said = "preview succeeded"
except automation.errors.CommandError as error:
    said = str(error)
print(json.dumps({"reached": reached, "said": said}), flush=True)
os._exit(0)
"""


def test_the_quick_start_reaches_the_program(project: Path, cli_env: dict[str, str]):
    """The real program, run in-process by the real CLI (Automation API), reads and accepts the quick
    start's config and registers its first resource, the machine's preflight, which every AWS
    provider waits for; the missing command provider plugin stops it there."""
    quick_start(project, cli_env)
    completed = subprocess.run(
        [sys.executable, "-c", IN_PROCESS_PREVIEW, str(project)],
        env={**os.environ, **cli_env, "PYTHONPATH": str(project)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    said = result["said"]
    assert not any(words in said for words in CONFIG_REFUSED), said
    assert result["reached"] == ["program"], "the program went past the AWS side's first question"
    assert "condor-annex:machine:Preflight preflight create" in said, said
    assert "no resource plugin 'pulumi-resource-command'" in said, said
    assert "aws:" not in said.replace("pulumi:providers:aws", ""), "an AWS resource was registered first"
