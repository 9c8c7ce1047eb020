"""End to end over real OpenSSH: install, configure, verify, re-run and destroy on a real account."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import PLATFORM_OF_THIS_MACHINE
from tests.e2e.machine import VOLATILE, Machine, TarballServer, master_running, read_config, snapshot
from tests.e2e.replay import StepFailedError, destroy, program_for, up
from tests.harness import BASE_CONFIG

PASSWORD = BASE_CONFIG["condor-annex:poolPassword"]


@pytest.mark.parametrize("version", ["24.0.24", "8.7.3"])
def test_up_rerun_and_destroy(machine: Machine, tarballs: TarballServer, bindings: str, fresh_home: Path, version: str):
    before = snapshot(fresh_home)
    program, port = program_for(machine, tarballs, version)
    sessions = machine.sessions
    results = up(machine, program)
    assert machine.sessions - sessions == 7, "one SSH session per step"
    assert f"/condor-{version}-{PLATFORM_OF_THIS_MACHINE}-stripped.tar.gz" in tarballs.requests
    assert "not verified" in results["personal-condor-install"].stderr, "an unpinned tarball must be called out"
    assert "Your setup looks OK" in results["annex-client-check-setup"].stderr

    install_dir = fresh_home / f"condor-{version}"
    region_prefix = "" if version == "8.7.3" else "us_east_1."
    values = read_config(
        machine,
        bindings,
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
        ],
    )
    assert values["COLLECTOR_HOST"].endswith(f":{port}")
    assert values["NETWORK_INTERFACE"] == "*"
    assert values["SEC_PASSWORD_FILE"] == f"{install_dir}/local/condor_pool_password"
    assert values["SEC_DAEMON_AUTHENTICATION_METHODS"] == "PASSWORD"
    assert values["ALLOW_DAEMON"] == "condor_pool@*"
    assert values[f"{region_prefix}ANNEX_DEFAULT_S3_BUCKET"] == program.outputs["bucketName"].value
    assert values[f"{region_prefix}ANNEX_DEFAULT_SECRET_KEY_FILE"] == f"{fresh_home}/.condor/privateKeyFile"
    if version != "8.7.3":
        assert values["ANNEX_DEFAULT_AWS_REGION"] == "us-east-1"

    condor_dir = fresh_home / ".condor"
    pem = "HTCondorAnnex-KeyPair.pem" if version == "8.7.3" else "HTCondorAnnex-KeyPair.us-east-1.pem"
    assert stat.S_IMODE(condor_dir.stat().st_mode) == 0o700
    for name in ("publicKeyFile", "privateKeyFile", pem):
        assert stat.S_IMODE((condor_dir / name).stat().st_mode) == 0o600, name
    assert (condor_dir / "privateKeyFile").read_text().strip() == "SENTINEL-aws-secret-key-7f3a"
    password_file = install_dir / "local" / "condor_pool_password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert PASSWORD.encode() not in password_file.read_bytes(), "the pool password file is stored in the clear"
    user_config = (condor_dir / "user_config").read_text()
    assert user_config.count("# BEGIN condor-annex") == 1
    # 8.7.3 has no region knob (the wheel's parser has a default for it, so read the file).
    assert ("ANNEX_DEFAULT_AWS_REGION" in user_config) == (version != "8.7.3")
    assert master_running(machine)

    after_first = snapshot(fresh_home, VOLATILE | {f"condor-{version}/local/log"})
    up(machine, program)
    assert snapshot(fresh_home, VOLATILE | {f"condor-{version}/local/log"}) == after_first, "a re-run changed files"

    destroy(machine, program)
    assert snapshot(fresh_home) == before, "destroy left the home different from before"
    assert not master_running(machine)
    assert not list(Path("/tmp").glob("condor-lock.*")), "the LOCK directory outlived destroy"


def test_users_own_lines_and_condor_dir_survive(machine: Machine, tarballs: TarballServer, fresh_home: Path):
    condor_dir = fresh_home / ".condor"
    condor_dir.mkdir(mode=0o755)
    (condor_dir / "user_config").write_text("# mine\nMY_KNOB = 1\n")
    subprocess.run(["chown", "-R", f"{machine.user}:{machine.user}", str(condor_dir)], check=True)
    before = snapshot(fresh_home)
    program, _ = program_for(machine, tarballs, "24.0.24")
    up(machine, program)
    text = (condor_dir / "user_config").read_text()
    assert text.startswith("# mine\nMY_KNOB = 1\n") and "# BEGIN condor-annex" in text
    destroy(machine, program)
    assert snapshot(fresh_home, VOLATILE) == {k: v for k, v in before.items() if k not in VOLATILE}
    assert condor_dir.is_dir(), "destroy removed a ~/.condor the user had"


def test_wrong_checksum_fails_clearly_then_succeeds(machine: Machine, tarballs: TarballServer, fresh_home: Path):
    before = snapshot(fresh_home)
    program, _ = program_for(machine, tarballs, "24.0.24", condorTarballSha256="0" * 64)
    with pytest.raises(StepFailedError) as failed:
        up(machine, program)
    assert failed.value.step == "personal-condor-install"
    assert "checksum mismatch" in failed.value.result.stderr and "condorTarballSha256" in failed.value.result.stderr
    assert snapshot(fresh_home) == before, "a failed download left files behind"

    good = tarballs.sha256(tarballs.files[f"/condor-24.0.24-{PLATFORM_OF_THIS_MACHINE}-stripped.tar.gz"])
    program, _ = program_for(machine, tarballs, "24.0.24", condorTarballSha256=good)
    results = up(machine, program)
    assert f"sha256 verified: {good}" in results["personal-condor-install"].stderr
    destroy(machine, program)


def test_missing_tarball_fails_clearly(machine: Machine, tarballs: TarballServer, fresh_home: Path):
    before = snapshot(fresh_home)
    program, _ = program_for(machine, tarballs, "24.0.24", prefix="/nowhere")
    with pytest.raises(StepFailedError) as failed:
        up(machine, program)
    assert "download of http://127.0.0.1" in failed.value.result.stderr and "404" in failed.value.result.stderr
    assert snapshot(fresh_home) == before


def test_daemon_that_will_not_start_fails_with_its_own_words(
    machine: Machine, tarballs: TarballServer, fresh_home: Path
):
    program, _ = program_for(machine, tarballs, "24.0.24", prefix="/broken")
    with pytest.raises(StepFailedError) as failed:
        up(machine, program)
    assert failed.value.step == "personal-condor-start"
    assert "libcondor_utils.so" in failed.value.result.stderr, failed.value.result.stderr
    destroy(machine, program)
    fixed, _ = program_for(machine, tarballs, "24.0.24")
    up(machine, fixed)
    destroy(machine, fixed)
