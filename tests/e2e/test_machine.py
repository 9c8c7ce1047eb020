"""End to end over real OpenSSH: install, configure, verify, re-run and destroy on a real account."""

from __future__ import annotations

import json
import stat
import subprocess
import time
from pathlib import Path

import pytest

from components.contract import CondorRelease
from components.key_pair import public_key_line
from components.personal_condor import condor_config_text
from tests.e2e.conftest import PLATFORM_OF_THIS_MACHINE, VERSIONS, write_aws_state
from tests.e2e.machine import (
    GROWS_ON_EVERY_RUN,
    SSH_HOST,
    Machine,
    TarballServer,
    as_cron_runs,
    lock_dirs,
    master_pids,
    master_running,
    our_cron_lines,
    read_config,
    snapshot,
)
from tests.e2e.release import StandinFiles, stored_password
from tests.e2e.replay import StepFailedError, destroy, program_for, run_step, step_named, steps, up
from tests.harness import BASE_CONFIG, SENTINEL_SECRET_KEY, sentinels

PASSWORD = BASE_CONFIG["condor-annex:poolPassword"]


def fails_and_leaves_nothing(
    machine: Machine, tarballs: TarballServer, home: Path, step: str, prefix: str = "", **config: str
) -> str:
    """An up that fails at `step`, then a destroy that leaves the home as it was; what the step said."""
    before = snapshot(home)
    program, _ = program_for(machine, tarballs, "24.0.23", prefix=prefix, **config)
    with pytest.raises(StepFailedError) as failed:
        up(machine, program)
    assert failed.value.step == step, failed.value
    destroy(machine, program)
    assert snapshot(home) == before, f"a failed {step} left the home different after destroy"
    assert not lock_dirs() and not master_running(machine)
    return failed.value.result.stderr


def succeeds_and_leaves_nothing(machine: Machine, tarballs: TarballServer, home: Path, **config: str) -> dict:
    """The fixed config: up completes, destroy leaves the home as it was; each step's result."""
    before = snapshot(home)
    program, _ = program_for(machine, tarballs, "24.0.23", **config)
    results = up(machine, program)
    assert master_running(machine)
    destroy(machine, program)
    assert snapshot(home) == before
    return results


def users_condor_dir(machine: Machine, home: Path, mode: int, files: dict[str, bytes]) -> Path:
    """A ~/.condor the user had before us, with these files in it, owned by the user."""
    condor_dir = home / ".condor"
    condor_dir.mkdir(mode=mode)
    for name, content in files.items():
        (condor_dir / name).write_bytes(content)
    subprocess.run(["chown", "-R", f"{machine.user}:{machine.user}", str(condor_dir)], check=True)
    return condor_dir


def tool_runs(files: StandinFiles) -> list[list[str]]:
    """The argv of every HTCondor tool our steps ran, as the stand-in recorded them."""
    return [json.loads(line) for line in files.argv_log.read_text().splitlines()]


def assert_no_secret_in_argv(files: StandinFiles) -> None:
    runs = tool_runs(files)
    assert any(run[0] == "condor_store_cred" for run in runs), "the stand-in recorded no condor_store_cred run"
    for run in runs:
        for secret in sentinels():
            assert secret not in " ".join(run), f"a secret is on the command line of {run[0]}"


@pytest.mark.parametrize("reach", ["ssh", "local"])
@pytest.mark.parametrize("version", VERSIONS)
def test_up_rerun_and_destroy(
    machine: Machine, tarballs: TarballServer, standin_files: StandinFiles, fresh_home: Path, version: str, reach: str
):
    """The same checks whether the steps reach the machine over SSH or run on it as the user."""
    before = snapshot(fresh_home)
    program, port = program_for(machine, tarballs, version, local=reach == "local")
    assert {step.type for step in steps(program)} == {f"command:{reach.replace('ssh', 'remote')}:Command"}
    sessions = machine.sessions
    results = up(machine, program)
    assert machine.sessions - sessions == (len(steps(program)) if reach == "ssh" else 0), "one session a step, or none"
    assert f"/condor-{version}-{PLATFORM_OF_THIS_MACHINE}-stripped.tar.gz" in tarballs.requests
    assert "not verified" in results["personal-condor-install"].stderr, "an unpinned tarball must be called out"
    release = CondorRelease(version)
    check_log = results["annex-client-check-setup-us-east-1"].stderr
    assert "Your setup looks OK" in check_log
    annex_path = f"{SSH_HOST}:{port}" if reach == "ssh" else ""
    assert f"the collector annexes reach answers at {annex_path}" in results["personal-condor-start"].stderr
    if release.hpc_annex:
        assert "htcondor annex checksetup --aws-region us-east-1" in check_log
    elif version != "8.7.3":
        assert "Checking security configuration... OK." in check_log
    assert "completed in about" in results["personal-condor-start"].stderr, "the guide's test job did not run"
    master_log = (fresh_home / f"condor-{version}" / "local" / "log" / "MasterLog").read_text()
    assert "Can't find address for negotiator" not in master_log, "a reschedule was lost"

    install_dir = fresh_home / f"condor-{version}"
    region_prefix = "us_east_1." if release.region_prefixed_knobs else ""
    values = read_config(
        machine,
        standin_files.bindings,
        install_dir,
        [
            "COLLECTOR_HOST",
            "NETWORK_INTERFACE",
            "SEC_PASSWORD_FILE",
            "SEC_DAEMON_AUTHENTICATION_METHODS",
            "ALLOW_DAEMON",
            f"{region_prefix}ANNEX_DEFAULT_S3_BUCKET",
            f"{region_prefix}ANNEX_DEFAULT_SECRET_KEY_FILE",
            "ANNEX_DEFAULT_AWS_REGION",
            "ANNEX_COLLECTOR",
        ],
    )
    assert values["COLLECTOR_HOST"].endswith(f":{port}")
    as_annex = read_config(machine, standin_files.bindings, install_dir, ["COLLECTOR_HOST"], subsystem="ANNEX")
    if reach == "ssh":
        assert as_annex["COLLECTOR_HOST"] == f"{SSH_HOST}:{port}", "annex instances call back at the host given"
    else:
        assert as_annex["COLLECTOR_HOST"] == values["COLLECTOR_HOST"], "no public name given: HTCondor's own"
    assert values["NETWORK_INTERFACE"] == "*"
    assert values["SEC_PASSWORD_FILE"] == f"{install_dir}/local/{release.pool_password_file}"
    if release.hpc_annex:
        assert values["ANNEX_COLLECTOR"].endswith(f":{port}?sock=ap_collector")
        assert values["SEC_DAEMON_AUTHENTICATION_METHODS"] is None, "25.0 keeps its own IDTOKENS defaults"
    else:
        assert values["SEC_DAEMON_AUTHENTICATION_METHODS"] == "PASSWORD"
        assert values["ALLOW_DAEMON"] == "condor_pool@*"
    assert values[f"{region_prefix}ANNEX_DEFAULT_S3_BUCKET"] == program.outputs["bucketName"].value
    assert values[f"{region_prefix}ANNEX_DEFAULT_SECRET_KEY_FILE"] == f"{fresh_home}/.condor/privateKeyFile"
    if release.writes_region_knob:
        assert values["ANNEX_DEFAULT_AWS_REGION"] == "us-east-1"

    # Every file we write, by content as well as by mode.
    condor_dir = fresh_home / ".condor"
    pem = "HTCondorAnnex-KeyPair.us-east-1.pem" if release.region_prefixed_knobs else "HTCondorAnnex-KeyPair.pem"
    assert stat.S_IMODE(condor_dir.stat().st_mode) == 0o700
    assert (fresh_home / ".hpc-annex").is_dir() == release.hpc_annex, "htcondor annex create needs ~/.hpc-annex"
    for name in ("publicKeyFile", "privateKeyFile", pem):
        assert stat.S_IMODE((condor_dir / name).stat().st_mode) == 0o600, name
    assert (condor_dir / "publicKeyFile").read_text() == program.outputs["accessKeyId"].value + "\n"
    assert (condor_dir / "privateKeyFile").read_text() == SENTINEL_SECRET_KEY + "\n"
    assert (condor_dir / pem).read_text().startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    public_key = subprocess.run(["ssh-keygen", "-y", "-f", condor_dir / pem], capture_output=True, text=True)
    made = results["annex-key-pair-us-east-1-make"].stdout
    assert public_key_line(made) + "\n" == public_key.stdout, "EC2 must import this key's public half"
    assert public_key.stdout.startswith("ssh-rsa ") and "PRIVATE" not in made
    user_config = (condor_dir / "user_config").read_text()
    assert user_config.count("# BEGIN condor-annex (") == 1
    for name, value in program.outputs["userConfigKnobs"].value.items():
        assert f"\n{name} = {value}\n" in user_config, name
    assert ("ANNEX_DEFAULT_AWS_REGION" in user_config) == release.writes_region_knob
    public_name = None if reach == "local" else SSH_HOST
    expected = condor_config_text(release, port, public_name) + "\n"
    assert (install_dir / "local" / release.config_file).read_text() == expected
    if version == "8.7.3":
        local_config = (install_dir / "local" / "condor_config.local").read_text()
        assert local_config.endswith("include : $(LOCAL_DIR)/condor_annex.config\n# END condor-annex\n")

    # The pool password as HTCondor reads it back, byte for byte, on every version line.
    password_file = install_dir / "local" / release.pool_password_file
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert stored_password(password_file) == PASSWORD.encode()
    assert_no_secret_in_argv(standin_files)
    assert master_running(machine)

    queue = machine.run(f". {install_dir}/condor.sh && condor_q")
    assert "Total for query: 0 jobs" in queue.stdout, f"the test job stayed in the queue: {queue.stdout}"

    skip_on_rerun = GROWS_ON_EVERY_RUN | {f"condor-{version}/local/log", f"condor-{version}/local/spool"}
    after_first = snapshot(fresh_home, skip_on_rerun)
    up(machine, program)
    assert snapshot(fresh_home, skip_on_rerun) == after_first, "a re-run changed files"

    destroy(machine, program)
    assert snapshot(fresh_home) == before, "destroy left the home different from before"
    assert not master_running(machine)
    assert not lock_dirs(), "the LOCK directory outlived destroy"


@pytest.mark.parametrize("version", ["24.0.23", "8.7.3"])
def test_a_condor_dir_and_empty_user_config_the_user_had_come_back_byte_for_byte(
    machine: Machine, tarballs: TarballServer, fresh_home: Path, version: str
):
    condor_dir = users_condor_dir(machine, fresh_home, 0o755, {"user_config": b"", "notes": b"mine\n"})
    before = snapshot(fresh_home)
    program, _ = program_for(machine, tarballs, version)
    up(machine, program)
    up(machine, program)
    assert "# BEGIN condor-annex" in (condor_dir / "user_config").read_text()
    destroy(machine, program)
    assert snapshot(fresh_home) == before, "destroy did not put ~/.condor back as it was"
    assert not lock_dirs()


def test_users_own_lines_survive(machine: Machine, tarballs: TarballServer, fresh_home: Path):
    condor_dir = users_condor_dir(machine, fresh_home, 0o755, {"user_config": b"# mine\nMY_KNOB = 1\n"})
    before = snapshot(fresh_home)
    program, _ = program_for(machine, tarballs, "24.0.23")
    up(machine, program)
    text = (condor_dir / "user_config").read_text()
    assert text.startswith("# mine\nMY_KNOB = 1\n") and "# BEGIN condor-annex" in text
    destroy(machine, program)
    assert snapshot(fresh_home) == before


def test_htcondors_own_files_the_user_had_are_kept(machine: Machine, tarballs: TarballServer, fresh_home: Path):
    """known_hosts from the user's own condor_q: HTCondor's tools add to it as our steps run them, and
    destroy keeps it, as it keeps a config tarball of a failed annex the user had; what the user's
    annexes wrote there while the stack stood (the password `htcondor annex create` hands its
    annexes, a failed annex's tarball) goes with it."""
    users_tarball = "temporary.tar.gz.AbC123"
    condor_dir = users_condor_dir(
        machine, fresh_home, 0o755, {"known_hosts": b"submit FS unknown\n", users_tarball: b"theirs"}
    )
    program, _ = program_for(machine, tarballs, "24.0.23")
    up(machine, program)
    for name in ("annex_password_file", "temporary.tar.gz.XyZ789"):
        assert machine.run(f"echo annex >{condor_dir / name}").status == 0
    destroy(machine, program)
    assert sorted(path.name for path in condor_dir.iterdir()) == ["known_hosts", users_tarball]
    assert (condor_dir / "known_hosts").read_text().startswith("submit FS unknown\n")


# 25.0.13 and 8.7.3 under the real engine: tests/e2e/test_engine.py.
@pytest.mark.parametrize("version", ["24.0.23"])
def test_new_pool_password_restarts_onto_fresh_daemons(
    machine: Machine, tarballs: TarballServer, fresh_home: Path, version: str
):
    """After condor_restart the collector still lists the old daemons and the schedd is away for a
    moment: verification must wait for daemons started after the restart, not pass on the old ones.
    On 25.0 the password is the pool's signing key."""
    program, port = program_for(machine, tarballs, version)
    up(machine, program)
    rotated, _ = program_for(machine, tarballs, version, poolPassword="a-rotated-pool-password", port=port)
    assert rotated.changed_from(program) == ["personal-condor-pool-password", "personal-condor-start"]
    for name in rotated.changed_from(program):
        result = run_step(machine, step_named(rotated, name))
        assert result.status == 0, result.stderr
    assert "restarting condor_master" in result.stderr and "every daemon reported after" in result.stderr
    history = fresh_home / f"condor-{version}" / "local" / "spool" / "history"
    last_job = json.loads(history.read_text().splitlines()[-1])
    assert last_job["DaemonGeneration"] == 2, "the test job ran on the daemons of before the restart"
    password_file = fresh_home / f"condor-{version}" / "local" / CondorRelease(version).pool_password_file
    assert stored_password(password_file) == b"a-rotated-pool-password"
    destroy(machine, rotated)


@pytest.mark.parametrize(
    "not_yet, waiting_for",
    [
        ("key_known_from", "AWS does not know the new access key yet"),
        # Right after the annex user's policies are attached, IAM may still answer AccessDenied.
        ("policy_known_from", "IAM has not spread the annex user's policy yet"),
    ],
)
def test_what_aws_has_not_spread_yet_is_waited_for(
    machine: Machine,
    tarballs: TarballServer,
    standin_files: StandinFiles,
    fresh_home: Path,
    not_yet: str,
    waiting_for: str,
):
    program, _ = program_for(machine, tarballs, "24.0.23")
    up(machine, program, stop_before="annex-client-check-setup-us-east-1")
    write_aws_state(standin_files, **{not_yet: time.time() + 6})
    result = run_step(machine, step_named(program, "annex-client-check-setup-us-east-1"))
    assert result.status == 0, result.stderr
    assert waiting_for in result.stderr
    assert "Your setup looks OK" in result.stderr
    destroy(machine, program)


def test_a_broken_pool_password_fails_check_setup(machine: Machine, tarballs: TarballServer, fresh_home: Path):
    """The daemons run on one password; the file now holds another, so annex instances could not join."""
    program, _ = program_for(machine, tarballs, "24.0.23")
    up(machine, program)
    password_file = fresh_home / "condor-24.0.23" / "local" / "condor_pool_password"
    password_file.write_bytes(b"\x00" + password_file.read_bytes()[1:])
    result = run_step(machine, step_named(program, "annex-client-check-setup-us-east-1"))
    assert result.status != 0
    assert "security configuration broken" in result.stderr and "not authorized to advertise" in result.stderr
    destroy(machine, program)


def test_wrong_checksum_fails_clearly_then_succeeds(machine: Machine, tarballs: TarballServer, fresh_home: Path):
    said = fails_and_leaves_nothing(
        machine, tarballs, fresh_home, "personal-condor-install", condorTarballSha256="0" * 64
    )
    assert "checksum mismatch" in said and "condorTarballSha256" in said
    good = tarballs.sha256(tarballs.files[f"/condor-24.0.23-{PLATFORM_OF_THIS_MACHINE}-stripped.tar.gz"])
    results = succeeds_and_leaves_nothing(machine, tarballs, fresh_home, condorTarballSha256=good)
    assert f"sha256 verified: {good}" in results["personal-condor-install"].stderr


def test_a_machine_without_the_tools_stops_at_the_preflight(
    machine: Machine, tarballs: TarballServer, fresh_home: Path, tmp_path: Path
):
    """A minimal image: no ssh-keygen, no crontab, no pgrep (the keeper's), no python3 (which 25.0's
    htcondor tool runs on); each named with its package on this Debian machine."""
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in Path("/usr/bin").iterdir():
        if tool.name not in ("ssh-keygen", "crontab", "pgrep") and not tool.name.startswith("python3"):
            (bare / tool.name).symlink_to(tool)
    tmp_path.chmod(0o755)
    before = snapshot(fresh_home)
    program, _ = program_for(machine, tarballs, "25.0.13")
    preflight = step_named(program, "preflight")
    result = machine.run(f"PATH={bare} {preflight.inputs['create']}", connection=preflight.inputs["connection"])
    assert result.status != 0
    missing = result.stderr.split("lacks what the install needs; install it and run pulumi up again: ")[1]
    named = [entry.split(" (")[0] for entry in missing.strip().split(";")]
    assert named == ["ssh-keygen", "crontab", "pgrep", "python3"]
    assert "ssh-keygen (openssh-client)" in missing and "crontab (cron)" in missing and "pgrep (procps)" in missing
    assert "python3 (python3)" in missing
    assert snapshot(fresh_home) == before


def test_daemon_that_will_not_start_fails_with_its_own_words(
    machine: Machine, tarballs: TarballServer, fresh_home: Path
):
    said = fails_and_leaves_nothing(machine, tarballs, fresh_home, "personal-condor-start", prefix="/broken")
    assert "libcondor_utils.so" in said, said
    succeeds_and_leaves_nothing(machine, tarballs, fresh_home)


def test_the_local_path_refuses_root(machine: Machine, tarballs: TarballServer, fresh_home: Path):
    """`pulumi up` run as root on the submit machine: the first step stops before it writes anything."""
    program, _ = program_for(machine, tarballs, "24.0.23", local=True)
    first = steps(program)[0]
    as_root = subprocess.run(["/bin/sh", "-c", first.inputs["create"]], capture_output=True, text=True, check=False)
    assert as_root.returncode != 0 and "runs as root" in as_root.stderr
    assert not Path("/root/.condor/.condor-annex-before").exists()


def test_what_the_users_bashrc_prints_stays_out_of_the_imported_key(
    machine: Machine, tarballs: TarballServer, fresh_home: Path
):
    """bash sources ~/.bashrc for a command sshd runs, so a banner there lands on the step's stdout."""
    bashrc = fresh_home / ".bashrc"
    bashrc.write_text("echo 'Welcome to the lab machine; quota: 2 GB'\n" + bashrc.read_text())
    program, _ = program_for(machine, tarballs, "24.0.23")
    result = run_step(machine, step_named(program, "condor-dir"))
    result = run_step(machine, step_named(program, "annex-key-pair-us-east-1-make"))
    assert result.status == 0, result.stderr
    assert result.stdout.startswith("Welcome to the lab machine"), "the banner must reach stdout for this test"
    pem = fresh_home / ".condor" / "HTCondorAnnex-KeyPair.us-east-1.pem"
    public_key = subprocess.run(["ssh-keygen", "-y", "-f", pem], capture_output=True, text=True, check=True)
    assert public_key_line(result.stdout) + "\n" == public_key.stdout
    destroy(machine, program)


def test_a_key_pair_file_the_user_had_is_never_replaced(machine: Machine, tarballs: TarballServer, fresh_home: Path):
    users_condor_dir(
        machine, fresh_home, 0o700, {"HTCondorAnnex-KeyPair.us-east-1.pem": b"the user's own key from -setup\n"}
    )
    before = snapshot(fresh_home)
    program, _ = program_for(machine, tarballs, "24.0.23")
    with pytest.raises(StepFailedError) as failed:
        up(machine, program)
    assert failed.value.step == "annex-key-pair-us-east-1-make" and "move it away" in failed.value.result.stderr
    destroy(machine, program)
    assert snapshot(fresh_home) == before


USERS_CRONTAB = '# the user\'s own\nMAILTO=""\n17 3 * * * /usr/bin/true\n'


def guides_job_completes(machine: Machine, install_dir: Path, within: float = 120) -> float:
    """The guide's test job, submitted as the user would; seconds until condor_history has it done."""
    started = time.monotonic()
    condor = f". {install_dir}/condor.sh"
    submit = "cd \"$(mktemp -d)\" && printf 'executable = /bin/true\\nqueue\\n' >job.sub && condor_submit job.sub"
    cluster = ""
    while time.monotonic() - started < within:
        if not cluster:
            job = machine.run(f"{condor} && {submit}", timeout=30)
            cluster = job.stdout.split("submitted to cluster ")[1].split(".")[0] if job.status == 0 else ""
        else:
            machine.run(f"{condor} && condor_reschedule", timeout=30)
            done = machine.run(f"{condor} && condor_history {cluster} -limit 1 -af JobStatus", timeout=30)
            if done.stdout.strip() == "4":
                return time.monotonic() - started
        time.sleep(1)
    raise AssertionError(f"the guide's job did not complete within {within} s (cluster {cluster or 'none'})")


@pytest.mark.parametrize("version", ["25.0.13", "8.7.3"])
def test_back_after_a_reboot_and_after_its_master_dies(
    machine: Machine, tarballs: TarballServer, fresh_home: Path, version: str
):
    """Every process of the user killed and /tmp's LOCK directory gone, as after a reboot; then the
    crontab's @reboot entry run as cron runs it: the pool answers and the guide's job runs. A master
    killed alone is started again by the periodic entry, which starts no second one. Destroy leaves
    the crontab the user had byte for byte (and none for a user who had none: `snapshot`)."""
    assert machine.run("crontab -", stdin=USERS_CRONTAB).status == 0
    before = snapshot(fresh_home)
    program, _ = program_for(machine, tarballs, version)
    up(machine, program)
    entries = our_cron_lines(machine)
    assert [entry.split()[0] for entry in entries] == ["@reboot", "*/5"], entries
    assert machine.run("crontab -l").stdout.startswith(USERS_CRONTAB), "the user's own lines come first, as they were"

    subprocess.run(["pkill", "-KILL", "-u", machine.user], check=False)
    for lock in lock_dirs():
        subprocess.run(["rm", "-rf", str(lock)], check=True)
    assert not master_pids(machine)
    booted = time.monotonic()
    as_cron_runs(machine, entries[0])
    took = time.monotonic() - booted + guides_job_completes(machine, fresh_home / f"condor-{version}")
    print(f"{version}: from the @reboot entry to the guide's job completed: {took:.1f} s")

    subprocess.run(["kill", "-KILL", *master_pids(machine)], check=True)
    as_cron_runs(machine, entries[1])
    (restarted,) = master_pids(machine)
    as_cron_runs(machine, entries[1])
    assert master_pids(machine) == [restarted], "the periodic entry started a second master"
    guides_job_completes(machine, fresh_home / f"condor-{version}")

    destroy(machine, program)
    assert machine.run("crontab -l").stdout == USERS_CRONTAB
    assert snapshot(fresh_home) == before and not master_running(machine) and not lock_dirs()


@pytest.mark.parametrize("version", ["8.7.3", "24.0.23"])
def test_destroy_refuses_while_an_annex_runs_then_leaves_it_when_told(
    machine: Machine, tarballs: TarballServer, standin_files: StandinFiles, fresh_home: Path, version: str
):
    """An annex still running: destroy stops at the guard, removes nothing, and names the annex with
    the command that ends it, in the version's own options (8.7.3's condor_annex has no -aws-region);
    told to leave it, destroy goes on, warns, and ends nothing. The real condor_annex's refuse and
    end, against an annex that ran a job: tests/e2e/test_annex.py."""
    before = snapshot(fresh_home)
    program, port = program_for(machine, tarballs, version)
    up(machine, program)
    write_aws_state(standin_files, annexes={"us-east-1": {"burst-1": 2}})
    running = GROWS_ON_EVERY_RUN | {f"condor-{version}/local/log", f"condor-{version}/local/spool"}
    after_up = snapshot(fresh_home, running)

    with pytest.raises(StepFailedError) as refused:
        destroy(machine, program)
    assert refused.value.step == "annex-guard", refused.value
    region_option = "" if version == "8.7.3" else "-aws-region us-east-1 "
    ending = f"condor_annex {region_option}-annex-name burst-1 -duration 0.001"
    assert f"annex burst-1 in us-east-1: 2 instance(s); end it with: {ending}" in refused.value.result.stderr
    assert snapshot(fresh_home, running) == after_up and master_running(machine), "a refusal removed things"

    leaving, _ = program_for(machine, tarballs, version, port=port, annexesOnDestroy="leave")
    guard = step_named(leaving, "annex-guard")
    result = run_step(machine, guard, "delete")
    assert result.status == 0 and "WARNING: destroying while annexes run" in result.stderr, result.stderr
    assert "burst-1" in result.stderr
    assert not any("-duration" in run for run in tool_runs(standin_files)), "leave ended an annex"
    destroy(machine, leaving)
    assert snapshot(fresh_home) == before
