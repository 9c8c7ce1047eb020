"""What reaching the pool's open port, or holding an annex tarball, lets someone do to the pool: on
the real HTCondor 24.0.23 and 25.0.13 of ../shared/real-htcondor, installed by the machine steps
over SSH.

The outsider is another Unix account of the machine, with the release's own tools and a client
configuration of its own, and the user has a job queued whose environment holds a secret.
- With every authentication method that needs no secret of the pool (SSL, ANONYMOUS, CLAIMTOBE,
  KERBEROS), as anyone who reaches the port can, it reads neither the pool (the collector) nor the
  queue (the schedd, asked at its own address). The same queries by a local account, which FS
  authenticates, get the slots and the user's job, secret and all: the refusals are
  authentication's. (With HTCondor's default, SEC_READ_AUTHENTICATION = OPTIONAL, SSL read both on
  24.0.23 and all four methods did on 25.0.13, before this program required it.)
- On 24.0.23, where HTCondor signs tokens with the pool password file unless told otherwise, a
  token minted from that file (which condor_annex copies into every annex tarball) is refused: the
  outsider can neither be mapped to the user nor submit as them. A token minted with the pool's own
  signing key, everything else the same, is accepted as the user and its job queued: the refusal is
  the key's.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.annex_world import REAL_VERSIONS, real_tarball
from tests.e2e.machine import Machine, TarballServer, local_account, readable_by_everyone
from tests.e2e.real_pool import as_user, pool_steps, queue_a_sleeping_job
from tests.e2e.replay import program_for

OUTSIDER = "annex-e2e-outsider"
# What a client far from the machine may try without the pool's password or a token it signed.
METHODS_NEEDING_NO_SECRET = ("SSL", "ANONYMOUS", "CLAIMTOBE", "KERBEROS")


@dataclass
class Outsider:
    tools: Path
    home: Path

    def run(self, config: str, *argv: str) -> subprocess.CompletedProcess[str]:
        """One of the release's tools, as the outsider, with this client configuration alone."""
        (self.home / "condor_config").write_text(f"LOCAL_DIR = {self.home}\nLOG = {self.home}\n{config}\n")
        as_outsider = ["setpriv", f"--reuid={OUTSIDER}", f"--regid={OUTSIDER}", "--clear-groups"]
        environment = ["env", "-i", "PATH=/usr/bin:/bin", f"CONDOR_CONFIG={self.home}/condor_config"]
        return subprocess.run(
            [*as_outsider, *environment, str(self.tools / argv[0]), *argv[1:]],
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def give(self, source: Path, name: str) -> Path:
        """A copy of a file, the outsider's own."""
        copy = self.home / name
        shutil.copy(source, copy)
        shutil.chown(copy, OUTSIDER, OUTSIDER)
        return copy


@pytest.fixture
def outsider(tmp_path: Path, request: pytest.FixtureRequest) -> Outsider:
    version = request.node.callspec.params["version"]
    local_account(OUTSIDER)
    readable_by_everyone(tmp_path)
    with tarfile.open(real_tarball(version)) as release:
        release.extractall(tmp_path / "release", filter="tar")
    (tools,) = (tmp_path / "release").glob("condor-*/bin")
    home = tmp_path / "outsider"
    home.mkdir()
    shutil.chown(home, OUTSIDER, OUTSIDER)
    return Outsider(tools=tools, home=home)


def queue_a_job_with_a_secret(machine: Machine, install_dir: Path) -> str:
    secret = secrets.token_hex(8)
    queue_a_sleeping_job(machine, install_dir, "-a", f"environment = SECRET={secret}")
    return secret


def schedd_address(machine: Machine, install_dir: Path) -> str:
    return as_user(machine, install_dir, "condor_status -schedd -af MyAddress").strip()


@pytest.mark.parametrize("version", REAL_VERSIONS)
def test_whoever_reaches_the_port_reads_neither_the_queue_nor_the_pool(
    machine: Machine, real_tarballs: TarballServer, fresh_home: Path, outsider: Outsider, version: str
):
    program, port = program_for(machine, real_tarballs, version)
    pool_steps(machine, program, "create")
    install_dir = fresh_home / f"condor-{version}"
    secret = queue_a_job_with_a_secret(machine, install_dir)
    address_file = outsider.home / "schedd_address"
    address_file.write_text(schedd_address(machine, install_dir) + "\n")
    pool = ["condor_status", "-af", "Name"]
    queue = ["condor_q", "-allusers", "-af", "Owner", "Environment"]
    reach = f"COLLECTOR_HOST = 127.0.0.1:{port}\nSCHEDD_ADDRESS_FILE = {address_file}\n"

    local = f"{reach}SEC_CLIENT_AUTHENTICATION_METHODS = FS"
    assert "slot1@" in outsider.run(local, *pool).stdout
    assert f"SECRET={secret}" in outsider.run(local, *queue).stdout
    for method in METHODS_NEEDING_NO_SECRET:
        afar = f"{reach}SEC_CLIENT_AUTHENTICATION_METHODS = {method}"
        read_pool, read_queue = outsider.run(afar, *pool), outsider.run(afar, *queue)
        assert "slot" not in read_pool.stdout, f"{method} read the pool: {read_pool.stdout}"
        assert secret not in read_queue.stdout + read_queue.stderr, f"{method} read the queue"
        assert "Failed to fetch ads from" in read_queue.stderr, read_queue.stderr

    pool_steps(machine, program, "delete")


@pytest.mark.parametrize("version", ["24.0.23"])
def test_a_token_minted_from_an_annex_tarballs_password_acts_as_no_one(
    machine: Machine, real_tarballs: TarballServer, fresh_home: Path, outsider: Outsider, version: str
):
    program, _ = program_for(machine, real_tarballs, version)
    pool_steps(machine, program, "create")
    install_dir = fresh_home / f"condor-{version}"
    user, trust_domain, password_file, signing_key = as_user(
        machine,
        install_dir,
        "condor_config_val UID_DOMAIN TRUST_DOMAIN SEC_PASSWORD_FILE SEC_TOKEN_POOL_SIGNING_KEY_FILE",
    ).split()
    identity = f"{machine.user}@{user}"
    address_file = outsider.home / "schedd_address"
    address_file.write_text(schedd_address(machine, install_dir) + "\n")
    job = outsider.home / "job.sub"
    job.write_text("executable = /bin/true\nqueue\n")

    def as_the_user_with_a_token_signed_by(key: Path) -> tuple[str, str]:
        """A token for the user signed with this key, then condor_ping WRITE and condor_submit with it alone."""
        tokens = outsider.home / "tokens"
        shutil.rmtree(tokens, ignore_errors=True)
        tokens.mkdir()
        shutil.chown(tokens, OUTSIDER, OUTSIDER)
        config = (
            f"TRUST_DOMAIN = {trust_domain}\nSEC_TOKEN_POOL_SIGNING_KEY_FILE = {key}\n"
            f"SEC_TOKEN_DIRECTORY = {tokens}\nSEC_CLIENT_AUTHENTICATION_METHODS = IDTOKENS\n"
            f"SCHEDD_ADDRESS_FILE = {address_file}"
        )
        minted = outsider.run(config, "condor_token_create", "-identity", identity, "-key", "POOL", "-token", "minted")
        assert minted.returncode == 0, minted.stderr
        ping = outsider.run(config, "condor_ping", "-type", "SCHEDD", "-verbose", "WRITE")
        submit = outsider.run(config, "condor_submit", "-spool", str(job))
        return " ".join((ping.stdout + ping.stderr).split()), submit.stdout + submit.stderr

    def queued() -> list[str]:
        return as_user(machine, install_dir, "condor_q -allusers -af Owner").split()

    ping, submit = as_the_user_with_a_token_signed_by(outsider.give(Path(password_file), "from_a_tarball"))
    assert "Failed to authenticate using IDTOKENS" in ping and f"Remote Mapping: {identity}" not in ping
    assert "submitted to cluster" not in submit and queued() == []

    ping, submit = as_the_user_with_a_token_signed_by(outsider.give(Path(signing_key), "the_pools_own"))
    assert f"Remote Mapping: {identity}" in ping and "Authorized: TRUE" in ping
    assert "1 job(s) submitted" in submit and queued() == [machine.user]

    pool_steps(machine, program, "delete")
