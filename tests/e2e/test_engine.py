"""The machine side's whole life under the real engine, over real OpenSSH, against the stand-ins.

Each point is read from the engine's own results (its operations, `stack export`) and from the
machine. Where the replay (tests/e2e/replay.py) says what a transition runs, the engine is held to
the same commands.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from components.contract import STACK_NAMES, CondorRelease
from tests.e2e import fake_iam
from tests.e2e.conftest import PLATFORM_OF_THIS_MACHINE, VERSION_TO_CUT, write_aws_state
from tests.e2e.engine import (
    ENGINE_POOL_PASSWORD,
    SECRET_ACCESS_KEY,
    EngineStack,
    Run,
    engine_stack,
    remember_host_key,
)
from tests.e2e.machine import (
    SSH_HOST,
    LatePort,
    Machine,
    Stall,
    TarballServer,
    free_port,
    host_key_line,
    lock_dirs,
    master_running,
    opened_to_everyone,
    readable_by_everyone,
    reset_home,
    snapshot,
    start_sshd,
)
from tests.e2e.release import StandinFiles, stored_password
from tests.e2e.replay import program_for, ssh_reach, steps
from tests.harness import LOCAL_REACH, ROOT, Program, command_graph

NEW_PASSWORD = "SENTINEL-engine-new-password-b71f"


def tool_runs(files: StandinFiles) -> list[str]:
    return [json.loads(line)[0] for line in files.argv_log.read_text().splitlines()]


def replay_names(machine: Machine, tarballs: TarballServer, version: str, port: int, **config: str) -> list[str]:
    """The commands the replay runs for this config, in its order."""
    program, _ = program_for(machine, tarballs, version, port=port, **config)
    return [step.name for step in steps(program)]


@pytest.mark.parametrize("version", ["25.0.13", "8.7.3"])
def test_a_whole_life_under_the_engine(
    machine: Machine,
    tarballs: TarballServer,
    standin_files: StandinFiles,
    fresh_home: Path,
    tmp_path: Path,
    version: str,
):
    release = CondorRelease(version)
    before = snapshot(fresh_home)
    port = free_port()
    # The sshd's key is in the user's known_hosts: plainly for one, hashed for the other.
    stack: EngineStack = engine_stack(tmp_path, machine, tarballs, version, port, hashed=version == "8.7.3")

    # Up from nothing: every command the replay runs, created, and a working pool.
    first = stack.up()
    assert not first.error, first.error + first.output
    assert first.changed() == dict.fromkeys(replay_names(machine, tarballs, version, port), "create")
    # The replay's one-after-another order rests on the commands each step comes after in the
    # registrations; the engine started no step before every one of those had finished.
    replay_program, _ = program_for(machine, tarballs, version, port=port)
    for name, step in command_graph(replay_program).items():
        for earlier in step["after"]:
            assert first.finished.index(earlier) < first.started.index(name), f"{name} started before {earlier}"
    assert len(set(first.started) & set(first.finished)) == len(first.started)
    assert master_running(machine)
    install_dir = fresh_home / f"condor-{version}"
    queue = machine.run(f". {install_dir}/condor.sh && condor_q")
    assert "Total for query: 0 jobs" in queue.stdout, queue.stdout

    # Nothing to do: the preview says so, an up changes nothing and runs no HTCondor tool, and a
    # refresh finds the state as it was.
    standin_files.argv_log.write_text("")
    assert not (no_changes := stack.preview(expect_no_changes=True)).error, no_changes.error
    again = stack.up()
    assert not again.error and not again.changed(), again.changed()
    assert tool_runs(standin_files) == []
    assert not (refreshed := stack.refresh(expect_no_changes=True)).error, refreshed.error

    # A new pool password: exactly the store and the restart run again, onto fresh daemons (the
    # stand-in counts its restarts as generations; the test job ran on the second).
    stack.set({"condor-annex:poolPassword": NEW_PASSWORD}, secret=("condor-annex:poolPassword",))
    changed = stack.up()
    assert not changed.error, changed.error
    assert changed.changed() == {"personal-condor-pool-password": "update", "personal-condor-start": "update"}
    assert stored_password(install_dir / "local" / release.pool_password_file) == NEW_PASSWORD.encode()
    history = install_dir / "local" / "spool" / "history"
    assert json.loads(history.read_text().splitlines()[-1])["DaemonGeneration"] == 2

    # Nothing the user supplied in secret is in plain text in `stack export` or in any state file.
    exported, stored = stack.export(), stack.stored()
    key_body = machine.client_key.read_text().splitlines()[1]
    assert '"ciphertext"' in exported
    for secret in (ENGINE_POOL_PASSWORD, NEW_PASSWORD, SECRET_ACCESS_KEY, key_body):
        assert secret not in exported and secret not in stored

    # Destroy: an empty stack and the home as it was.
    gone = stack.destroy()
    assert not gone.error, gone.error
    assert stack.resources() == []
    assert snapshot(fresh_home) == before
    assert not master_running(machine) and not lock_dirs()


def test_regions_added_and_removed_run_what_the_replay_runs(
    machine: Machine,
    tarballs: TarballServer,
    standin_files: StandinFiles,
    fresh_home: Path,
    tmp_path: Path,
    sshd_host_key: Path,
):
    """With the sshd's own host key pinned in sshHostKey. Adding a region runs its key pair
    and its check, rewrites the user_config and image blocks and updates the guard's region list;
    removing it undoes those; the engine does
    exactly what the replay does for the same change, and nothing else."""
    version, port = "25.0.13", free_port()
    pinned = {"condor-annex:sshHostKey": host_key_line(sshd_host_key)}
    stack = engine_stack(tmp_path, machine, tarballs, version, port, **pinned)
    assert not (first := stack.up()).error, first.error
    one, two = ["us-east-1"], ["us-east-1", "eu-west-2"]
    write_aws_state(standin_files, regions=tuple(two))
    replay_one, _ = program_for(machine, tarballs, version, port=port, regions=json.dumps(one))
    replay_two, _ = program_for(machine, tarballs, version, port=port, regions=json.dumps(two))

    stack.regions(two)
    added = stack.up()
    assert not added.error, added.error
    assert added.changed() == {
        "annex-key-pair-eu-west-2-make": "create",
        "annex-client-user-config": "update",
        "annex-client-images": "update",
        "annex-client-check-setup-eu-west-2": "create",
        "annex-guard": "update",
    }
    assert sorted(added.changed()) == replay_changes(replay_one, replay_two)
    assert (fresh_home / ".condor" / "HTCondorAnnex-KeyPair.eu-west-2.pem").exists()

    stack.regions(one)
    removed = stack.up()
    assert not removed.error, removed.error
    assert removed.changed() == {
        "annex-key-pair-eu-west-2-make": "delete",
        "annex-client-user-config": "update",
        "annex-client-images": "update",
        "annex-client-check-setup-eu-west-2": "delete",
        "annex-guard": "update",
    }
    assert sorted(removed.changed()) == replay_changes(replay_two, replay_one)
    assert not (fresh_home / ".condor" / "HTCondorAnnex-KeyPair.eu-west-2.pem").exists()
    assert "eu_west_2" not in (fresh_home / ".condor" / "user_config").read_text()
    assert not (gone := stack.destroy()).error, gone.error


def replay_changes(before: Program, after: Program) -> list[str]:
    """What the replay's transition runs from one program to the next: the steps gone, new or changed."""
    names_before = {step.name for step in steps(before)}
    names_after = {step.name for step in steps(after)}
    return sorted((names_before - names_after) | set(after.changed_from(before)))


def stalling_download_stack(
    tmp_path: Path, machine: Machine, tarballs: TarballServer, stall: Stall, **config: str
) -> EngineStack:
    """A stack whose install downloads the padded 24.0.23 tarball, which stalls half-way as `stall` says."""
    version = VERSION_TO_CUT
    tarballs.stalls[f"/big/condor-{version}-{PLATFORM_OF_THIS_MACHINE}-stripped.tar.gz"] = stall
    big = {"condor-annex:condorTarballUrl": tarballs.url(f"/big/condor-{version}-{{platform}}-stripped.tar.gz")}
    return engine_stack(tmp_path, machine, tarballs, version, free_port(), **big, **config)


def test_a_cli_killed_mid_install_then_the_readmes_way_back(
    machine: Machine, tarballs: TarballServer, fresh_home: Path, tmp_path: Path
):
    """SIGKILL while the install downloads: the next up finds the stack locked; the README's three
    commands (cancel, up, refresh --clear-pending-creates) end in a working pool and a clean state."""
    before = snapshot(fresh_home)
    stall = Stall()
    stack = stalling_download_stack(tmp_path, machine, tarballs, stall)
    cli = stack.popen("up", "--yes", "--skip-preview")
    assert stall.reached.wait(timeout=120), "the install never started its download"
    helpers = subprocess.run(["pgrep", "-P", str(cli.pid)], capture_output=True, text=True).stdout.split()
    cli.kill()
    cli.wait()
    stall.release.set()
    try:
        pending = [op["resource"]["urn"].rsplit("::", 1)[-1] for op in stack.pending_operations()]
        assert "personal-condor-install" in pending, pending
        locked = stack.up()
        assert "the stack is currently locked" in locked.error and "pulumi cancel" in locked.error, locked.error

        for command in README_AFTER_A_KILLED_CLI:
            done = stack.cli(*command.split()[1:])
            assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
            if command.startswith("pulumi up"):
                assert "pending operations from previous deployment" in done.stdout + done.stderr
        assert stack.pending_operations() == []
        assert master_running(machine)
        assert not (no_changes := stack.preview(expect_no_changes=True)).error, no_changes.error
        assert not (gone := stack.destroy()).error, gone.error
        assert snapshot(fresh_home) == before
    finally:
        # What the killed CLI started outlives it (the language host is left running, orphaned).
        for pid in helpers:
            subprocess.run(["kill", "-9", pid], check=False)


# README, "Day two": rotating the annex user's access key.
README_ROTATE_THE_KEY = ["pulumi config set annexKeyGeneration 2", "pulumi up --yes"]
# README, "When things go wrong": after a killed `pulumi up`.
README_AFTER_A_KILLED_CLI = ["pulumi cancel --yes", "pulumi up --yes", "pulumi refresh --clear-pending-creates --yes"]


def command_urns(stack: EngineStack) -> list[str]:
    return sorted(r["urn"] for r in stack.resources() if r["type"].startswith("command:"))


def test_a_machine_that_does_not_answer_or_answers_with_another_key(
    machine: Machine,
    tarballs: TarballServer,
    standin_files: StandinFiles,
    fresh_home: Path,
    tmp_path: Path,
):
    """Host keys, checked before anything runs, and a machine that does not answer:

    - the user's known_hosts holds another key for the host and port: the up stops at once naming
      the host and both fingerprints (as `ssh-keygen -l` prints them);
    - known_hosts holds none: the up stops at once with the command that records it, and that
      command (answered yes) lets the next up through;
    - sshd stops answering (connection refused) before a destroy: the destroy fails naming the host
      and port and keeps every step in the state; for a machine gone for good, the README's three
      commands destroy everything else and forget the machine's steps without reaching it.

    Nothing runs on the machine meanwhile: the home stays as it was and no HTCondor tool runs."""
    link = LatePort(target=machine.port, opens_after=0)
    through_link = {"condor-annex:sshPort": str(link.port)}
    unreachable = engine_stack(tmp_path / "unreachable", machine, tarballs, "25.0.13", free_port(), **through_link)
    assert not (first := unreachable.up()).error, first.error
    steps_in_state = command_urns(unreachable)
    other = tmp_path / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    impostor = engine_stack(
        tmp_path / "wrong-key", machine, tarballs, "25.0.13", free_port(), known_host_key=Path(f"{other}.pub")
    )
    stranger = engine_stack(tmp_path / "no-key", machine, tarballs, "25.0.13", free_port(), knows_host=False)
    before = snapshot(fresh_home)
    standin_files.argv_log.write_text("")

    started = time.monotonic()
    refused, unknown = impostor.up(), stranger.up()
    assert time.monotonic() - started < 60, "a host key was refused by dialling, not by the check"
    assert f"the host key of {SSH_HOST} port {machine.port} has changed" in refused.error, refused.error
    for public_key in (Path(f"{other}.pub"), machine.host_key):
        assert fingerprint(public_key) in refused.error, refused.error
    pin = f"ssh -p {machine.port} {machine.user}@{SSH_HOST} true"
    assert f"is not in {tmp_path / 'no-key' / '.ssh' / 'known_hosts'}" in unknown.error and pin in unknown.error
    for stack, run in ((impostor, refused), (stranger, unknown)):
        assert run.changed() == {} and command_urns(stack) == [], "a command started or is in the state"
    assert snapshot(fresh_home) == before and tool_runs(standin_files) == []
    # The printed command, answered yes (the test has no terminal), records the key where the program
    # reads it (hashed, as Debian's ssh_config says), and the next up goes through.
    # (ssh makes ~/.ssh itself when it records a key in its default file, not in a file it is given.)
    (tmp_path / "no-key" / ".ssh").mkdir(mode=0o700)
    answered = [
        f"-oUserKnownHostsFile={tmp_path / 'no-key' / '.ssh' / 'known_hosts'}",
        "-oStrictHostKeyChecking=accept-new",
    ]
    argv = shlex.split(pin)
    recorded = subprocess.run([*argv[:1], *answered, "-i", str(machine.client_key), *argv[1:]], capture_output=True)
    assert recorded.returncode == 0 and "Permanently added" in recorded.stderr.decode(), recorded.stderr
    assert not (through := stranger.up()).error, through.error
    assert not (gone := stranger.destroy()).error, gone.error

    link.close()
    before = snapshot(fresh_home)
    failed = unreachable.destroy()
    assert f"dial tcp {SSH_HOST}:{link.port}: connect: connection refused" in failed.error, failed.error
    assert command_urns(unreachable) == steps_in_state, "a step the machine still has was dropped from the state"
    assert snapshot(fresh_home) == before

    for command in README_MACHINE_GONE_FOR_GOOD:
        started = time.monotonic()
        done = unreachable.cli(*shlex.split(command)[1:])
        assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
        assert time.monotonic() - started < 60, f"{command} tried to reach the machine"
    assert unreachable.resources() == []


def fingerprint(public_key: Path) -> str:
    """As OpenSSH's own `ssh-keygen -l` prints it."""
    return subprocess.run(
        ["ssh-keygen", "-lf", str(public_key)], capture_output=True, text=True, check=True
    ).stdout.split()[1]


# README, "When things go wrong": the machine is gone for good.
README_MACHINE_GONE_FOR_GOOD = ["pulumi config set machineGone true", "pulumi up --yes", "pulumi destroy --yes"]


def test_what_a_fresh_up_shows(machine: Machine, tarballs: TarballServer, fresh_home: Path, tmp_path: Path):
    """The CLI's own output: the download's progress while it stalls, something at least every 30 s,
    and no line of base64 (the key pair step's public key is not echoed)."""
    stall = Stall(then_the_rest=True)
    stack = stalling_download_stack(tmp_path, machine, tarballs, stall)
    threading.Timer(STALL_SECONDS, stall.release.set).start()
    up = stack.up()
    assert not up.error, up.error
    progress = [line for _, line in up.lines if "downloading:" in line and "MiB so far" in line]
    assert len(progress) >= 2, "no progress shown while the download stalled"
    assert any("downloaded " in line and "MiB in" in line for _, line in up.lines)
    times = [when for when, _ in up.lines]
    assert max(later - earlier for earlier, later in itertools.pairwise(times)) <= 30
    assert not BASE64_RUN.search(up.output), BASE64_RUN.search(up.output)
    assert not (gone := stack.destroy()).error, gone.error


STALL_SECONDS = 25
# What a public key or any other blob looks like on a line: a long unbroken run of base64.
BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{100,}")


def diagnostics_of(error: str, step: str) -> str:
    """What the CLI's error says under one resource: its block in the Diagnostics section."""
    _, _, rest = error.partition(f"command:remote:Command ({step}):")
    assert rest, f"the CLI's error names no failure of {step}: {error[-3000:]}"
    return re.split(r"\n  \S.*\(.*\):\n|\nOutputs:|\nResources:", rest)[0]


@pytest.mark.parametrize(
    "failure, step, reasons",
    [
        ("no tarball", "preflight", ["no HTCondor 24.0.23 tarball for this machine at", "404", "condorTarballUrl"]),
        ("a stack missing", "annex-client-check-setup-us-east-1", ["Missing security group."]),
        ("no match", "personal-condor-start", ["did not complete within 60s", "No resources matched"]),
    ],
)
def test_a_failing_step_says_why_in_the_clis_error(
    machine: Machine,
    tarballs: TarballServer,
    standin_files: StandinFiles,
    fresh_home: Path,
    tmp_path: Path,
    failure: str,
    step: str,
    reasons: list[str],
):
    """The 404, the check's own words, the job's analysis: in the error the CLI ends with, under the
    step that failed; and a destroy after the failure leaves the home as it was."""
    before = snapshot(fresh_home)
    prefix = {"no tarball": "/nowhere", "no match": "/unmatched"}.get(failure, "")
    if failure == "a stack missing":
        write_aws_state(standin_files, stacks=STACK_NAMES[:3])
    stack = engine_stack(
        tmp_path,
        machine,
        tarballs,
        "24.0.23",
        free_port(),
        **{"condor-annex:condorTarballUrl": tarballs.url(f"{prefix}/condor-24.0.23-{{platform}}-stripped.tar.gz")},
    )
    failed = stack.up()
    assert not [urn for urn in command_urns(stack) if urn.endswith(f"::{step}")], "a failed step is in the state"
    said = diagnostics_of(failed.error, step)
    for reason in reasons:
        assert reason in said, said[-3000:]
    if failure == "no tarball":
        assert failed.changed() == {"preflight": "create"}, "nothing may start after a failed preflight"
        assert not any(path.startswith("/nowhere") for path in tarballs.requests), "the preflight downloads nothing"
    if failure == "no match":
        queue = machine.run(f". {fresh_home}/condor-24.0.23/condor.sh && condor_q")
        assert "Total for query: 0 jobs" in queue.stdout, "the test job was left in the queue"
    assert not (gone := stack.destroy()).error, gone.error
    assert snapshot(fresh_home) == before


def test_a_machine_still_booting_is_dialled_until_sshd_answers(
    machine: Machine, tarballs: TarballServer, fresh_home: Path, tmp_path: Path
):
    """Its port refuses connections for the first seconds: the provider dials again (the program
    gives it dialErrorLimit 30) and the up goes through."""
    booting = LatePort(target=machine.port, opens_after=BOOT_SECONDS)
    try:
        stack = engine_stack(
            tmp_path, machine, tarballs, "24.0.23", free_port(), **{"condor-annex:sshPort": str(booting.port)}
        )
        up = stack.up()
        assert not up.error, up.error
        assert any("failed: retrying" in said for said in up.diagnostics), "no dial met a closed port"
        assert master_running(machine)
        assert not (gone := stack.destroy()).error, gone.error
    finally:
        booting.close()


BOOT_SECONDS = 10


@contextlib.contextmanager
def link_in_a_namespace(machine: Machine) -> Iterator[tuple[str, int, Callable[[bool], None]]]:
    """A network namespace for the CLI, joined to this one by a veth pair, and a port on this side
    that forwards to the test's sshd: (namespace, port, set_silent). Silence takes this side's end
    of the pair down, so every packet between the CLI and the machine is dropped, none refused. The
    addresses are link-local: nothing is routed beyond the pair."""
    namespace, here, there = "annex-silent", "annex-h", "annex-n"

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True)

    ip("netns", "add", namespace)
    try:
        ip("link", "add", here, "type", "veth", "peer", "name", there, "netns", namespace)
        ip("addr", "add", f"{LINK_HERE}/30", "dev", here)
        ip("link", "set", here, "up")
        for args in (
            ("addr", "add", f"{LINK_THERE}/30", "dev", there),
            ("link", "set", there, "up"),
            ("link", "set", "lo", "up"),
        ):
            ip("netns", "exec", namespace, "ip", *args)
        forward = LatePort(target=machine.port, opens_after=0, listen=LINK_HERE)
        try:
            yield namespace, forward.port, lambda silent: ip("link", "set", here, "down" if silent else "up")
        finally:
            forward.close()
    finally:
        subprocess.run(["ip", "link", "del", here], check=False)
        subprocess.run(["ip", "netns", "del", namespace], check=False)


LINK_HERE, LINK_THERE = "169.254.77.1", "169.254.77.2"


def test_a_link_that_goes_silent_mid_step_fails_the_up_within_minutes(
    machine: Machine, tarballs: TarballServer, fresh_home: Path, tmp_path: Path
):
    """Packets dropped, not refused, while the install runs: pulumi-command sets no SSH keepalive,
    but Go dials with TCP keepalive on (15 s idle, 15 s apart, 9 probes), so the session dies
    about 2.5 minutes into the silence and the up fails naming the step. With the link back, the
    next up finishes the install."""
    before = snapshot(fresh_home)
    with link_in_a_namespace(machine) as (namespace, port, set_silent):
        stall = Stall(then_the_rest=True)
        through_link = {"condor-annex:host": LINK_HERE, "condor-annex:sshPort": str(port)}
        stack = stalling_download_stack(tmp_path, machine, tarballs, stall, **through_link)
        cli = stack.popen("up", "--yes", "--skip-preview", in_namespace=namespace)
        assert stall.reached.wait(timeout=120), "the install never started its download"
        # Silence once the install is the only step in flight: a step that starts dialling during
        # the silence waits out its 30 dials of 10 s each instead (see the README).
        condor_dir = fresh_home / ".condor"
        deadline = time.monotonic() + 60
        while not ((condor_dir / "user_config").exists() and list(condor_dir.glob("HTCondorAnnex-KeyPair*.pem"))):
            assert time.monotonic() < deadline, "the steps beside the install did not finish"
            time.sleep(0.2)
        time.sleep(2)
        set_silent(True)
        silenced = time.monotonic()
        try:
            output, _ = cli.communicate(timeout=SILENCE_BOUND_SECONDS * 2)
        finally:
            stall.release.set()
        took = time.monotonic() - silenced
        reasons = [line.strip() for line in output.splitlines() if line.strip().startswith("error:")]
        print(f"the up failed {took:.0f} s after the link went silent: {reasons}")
        assert cli.returncode != 0
        assert took < SILENCE_BOUND_SECONDS, f"the up took {took:.0f} s to give up on a silent link"
        assert "command:remote:Command (personal-condor-install):" in output

        set_silent(False)
        for operation in (("up", "--yes", "--skip-preview"), ("destroy", "--yes", "--skip-preview")):
            again = stack.popen(*operation, in_namespace=namespace)
            said, _ = again.communicate(timeout=600)
            assert again.returncode == 0, said[-3000:]
        assert snapshot(fresh_home) == before


# README, "When things go wrong": a step in flight on a silent link fails within this (measured: 147 to 160 s).
SILENCE_BOUND_SECONDS = 240


def test_the_readme_gives_the_ways_out_these_tests_run_word_for_word():
    readme = (ROOT / "README.md").read_text()
    for commands in (README_AFTER_A_KILLED_CLI, README_MACHINE_GONE_FOR_GOOD):
        assert "```bash\n" + "\n".join(commands) + "\n```" in readme


def test_rotating_the_annex_key_never_leaves_a_deleted_key_in_the_key_files(
    machine: Machine,
    tarballs: TarballServer,
    standin_files: StandinFiles,
    fresh_home: Path,
    tmp_path: Path,
):
    """`annexKeyGeneration` raised by one: the engine makes the new key, rewrites the key files,
    runs the check with it, and only then deletes the old key (a stand-in for IAM that the stand-in
    -check-setup reads, under the project's key names). The key files, read every 20 ms throughout,
    never hold a key before it exists or after it was deleted."""
    stack = engine_stack(
        tmp_path, machine, tarballs, "25.0.13", free_port(), **{"aws-side:fakeIam": str(standin_files.aws_state)}
    )
    assert not (first := stack.up()).error, first.error
    key_file = fresh_home / ".condor" / "publicKeyFile"
    seen: list[tuple[float, float, str]] = []
    watching = threading.Event()

    def watch() -> None:
        while not watching.is_set():
            began = time.time()
            with contextlib.suppress(FileNotFoundError):
                seen.append((began, time.time(), key_file.read_text().strip()))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    # The README's two commands: the first through the CLI as typed, the second as the Automation
    # API runs `pulumi up --yes`, to read the engine's events.
    set_generation = stack.cli(*shlex.split(README_ROTATE_THE_KEY[0])[1:])
    assert set_generation.returncode == 0, set_generation.stderr
    try:
        rotated = stack.up()
    finally:
        watching.set()
        watcher.join()
    assert not rotated.error, rotated.error
    assert rotated.changed() == {
        "annex-user-key-2": "create",
        "annex-client-key-files": "update",
        "annex-client-check-setup-us-east-1": "update",
        "annex-user-key": "delete",
    }
    check = "annex-client-check-setup-us-east-1"
    assert rotated.started.index("annex-user-key") > rotated.finished.index(check), "old key deleted before the check"
    state = json.loads(standin_files.aws_state.read_text())
    old, new = fake_iam.key_id(1), fake_iam.key_id(2)
    assert [entry[:2] for entry in state["iam_log"]] == [["create", old], ["create", new], ["delete", old]]
    assert state["access_keys"] == [new]
    created = {key: when for action, key, when in state["iam_log"] if action == "create"}
    deleted = {key: when for action, key, when in state["iam_log"] if action == "delete"}
    assert {held for _, _, held in seen} == {old, new}, "the watcher did not see the key files change"
    for began, ended, held in seen:
        assert ended > created[held], f"the key files held {held} before it existed"
        assert began < deleted.get(held, float("inf")), f"the key files held {held} after it was deleted"
    assert new in machine.run(f"cat {key_file}").stdout
    assert not (gone := stack.destroy()).error, gone.error
    assert json.loads(standin_files.aws_state.read_text())["access_keys"] == []


@pytest.fixture
def second_machine(workdir: Path) -> Iterator[Machine]:
    """Another Linux machine: its own sshd, address, host key and user."""
    process, other = start_sshd(workdir / "sshd-second", user="annex-e2e-second", host="127.0.0.3")
    reset_home(other)
    yield other
    reset_home(other)
    process.terminate()
    process.wait(timeout=10)


def assert_moved_old_undone_first(moved: Run, steps: set[str]) -> None:
    """Every step replaced, and every old one undone, the last first, before the first new one runs."""
    assert not moved.error, moved.error
    assert moved.changed() == dict.fromkeys(steps, "create-replacement"), moved.changed()
    undone = [step for step, op in moved.operations if op == "delete-replaced"]
    made = [step for step, op in moved.operations if op == "create-replacement"]
    assert moved.operations.index((undone[-1], "delete-replaced")) < moved.operations.index(
        (made[0], "create-replacement")
    )
    assert sorted(undone) == sorted(steps) and undone[-1] == "preflight" and made[0] == "preflight"


def test_moving_to_another_machine_undoes_the_old_one_first(
    machine: Machine, second_machine: Machine, tarballs: TarballServer, fresh_home: Path, tmp_path: Path
):
    """host, sshUser and sshPort changed at once: every step is replaced, the old machine's undone
    over the old connection before anything runs on the new one; the old home is as it was before
    the first up, the new one holds a working pool, and a destroy leaves it as it was too."""
    old_home, new_home = snapshot(fresh_home), snapshot(second_machine.home)
    stack = engine_stack(tmp_path, machine, tarballs, "25.0.13", free_port())
    first = stack.up()
    assert not first.error, first.error
    assert master_running(machine)
    steps = set(first.changed())

    remember_host_key(tmp_path, second_machine.host, second_machine.port, second_machine.host_key)
    stack.set(
        {
            "condor-annex:host": second_machine.host,
            "condor-annex:sshPort": str(second_machine.port),
            "condor-annex:sshUser": second_machine.user,
            "condor-annex:sshPrivateKey": second_machine.client_key.read_text(),
        },
        secret=("condor-annex:sshPrivateKey",),
    )
    assert_moved_old_undone_first(stack.up(), steps)
    assert not master_running(machine) and snapshot(fresh_home) == old_home
    assert master_running(second_machine)
    queue = second_machine.run(f". {second_machine.home}/condor-25.0.13/condor.sh && condor_q")
    assert "Total for query: 0 jobs" in queue.stdout, queue.stdout

    gone = stack.destroy()
    assert not gone.error, gone.error
    assert not master_running(second_machine) and snapshot(second_machine.home) == new_home


def test_moving_between_ssh_and_this_machine_itself_in_the_same_home_keeps_the_new_install(
    machine: Machine, tarballs: TarballServer, fresh_home: Path, tmp_path: Path
):
    """The machine's user runs pulumi on the machine itself, and moves the stack from `host` over
    SSH to `host: localhost` and back. Each step changes kind (remote to local command and back):
    the engine takes it as the same step through its alias and replaces it, the old one undone first.
    In the same home, an old step undone after the new one ran would remove the new install (without
    the alias, no pool is left after the move to localhost); instead the pool runs after each move,
    and a destroy leaves the home as it was."""
    before = snapshot(fresh_home)
    # The user's CLI runs the project's virtualenv, and the Python it was made from (root's, here).
    with opened_to_everyone(ROOT), opened_to_everyone(Path(sys.executable).resolve()):
        stack = engine_stack(
            readable_by_everyone(tmp_path),
            machine,
            tarballs,
            "25.0.13",
            free_port(),
            knows_host=False,
            run_by=machine,
            **ssh_reach(machine),
        )
        first = stack.up()
        assert not first.error, first.error
        steps = set(first.changed())
        for reach, secret in (
            (LOCAL_REACH, {}),
            (ssh_reach(machine), {"condor-annex:sshPrivateKey": machine.client_key.read_text()}),
        ):
            stack.set({**reach, **secret}, secret=tuple(secret))
            moved = stack.up()
            assert not moved.error, moved.error
            assert master_running(machine), f"no pool after the move to {reach['condor-annex:host']}"
            queue = machine.run(f". {fresh_home}/condor-25.0.13/condor.sh && condor_q")
            assert "Total for query: 0 jobs" in queue.stdout, queue.stdout
            assert_moved_old_undone_first(moved, steps)
        gone = stack.destroy()
    assert not gone.error, gone.error
    assert not master_running(machine) and snapshot(fresh_home) == before
