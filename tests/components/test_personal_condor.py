"""The machine-side steps as registered: per version, order, re-runs and secrets."""

from __future__ import annotations

import itertools

import pytest

from components.contract import CondorRelease
from components.personal_condor import condor_config_text
from tests.components.test_settings import HOST_KEY
from tests.harness import BASE_CONFIG, run_program

STEPS = [
    "condor-dir",
    "personal-condor-install",
    "personal-condor-configure",
    "personal-condor-pool-password",
    "personal-condor-start",
]
CLIENT_STEPS = ["annex-client-key-files", "annex-client-user-config", "annex-client-check-setup-us-east-1"]
AWS_TYPES = ("aws:",)


def test_install_step_per_version_line():
    new = run_program().commands()["personal-condor-install"]["create"]
    old = run_program({"condor-annex:condorVersion": "8.7.3"}).commands()["personal-condor-install"]["create"]
    assert "INSTALLER=make-personal-from-tarball" in new and "CONDOR_VERSION=25.0.13" in new
    assert "INSTALLER=condor_install" in old and "CONDOR_VERSION=8.7.3" in old
    assert "tarball/8.7/8.7.3/release/condor-8.7.3-{platform}-stripped.tar.gz" in old
    assert 'INSTALL_DIR="$HOME"/condor-8.7.3' in old


def test_config_file_per_version_line():
    new = run_program().commands()["personal-condor-configure"]["create"]
    old = run_program({"condor-annex:condorVersion": "8.7.3"}).commands()["personal-condor-configure"]["create"]
    assert "CONFIG_FILE=config.d/50-condor-annex" in new and "INCLUDE_FROM_LOCAL_CONFIG=no" in new
    assert "CONFIG_FILE=condor_annex.config" in old and "INCLUDE_FROM_LOCAL_CONFIG=yes" in old


def test_machine_steps_wait_for_nothing_on_aws():
    program = run_program()
    for name in STEPS:
        step = program.named(name)
        waited_for = [program.by_urn(urn).type for urn in step.dependencies]
        assert not any(t.startswith(AWS_TYPES) for t in waited_for), f"{name} waits for {waited_for}"
    order = [program.named(name) for name in STEPS]
    for before, after in itertools.pairwise(order):
        assert before.urn in after.dependencies, f"{after.name} does not wait for {before.name}"


def test_client_steps_wait_for_the_aws_side_and_condor():
    program = run_program()
    check = program.named("annex-client-check-setup-us-east-1")
    waited_for = {program.by_urn(urn).name for urn in check.dependencies}
    assert {"personal-condor-start", "annex-client-key-files", "annex-client-user-config"} <= waited_for
    stacks = {"ConfigurationBucket", "LambdaFunctions", "InstanceProfile", "SecurityGroup"}
    assert {f"annex-us-east-1-check-setup-HTCondorAnnex-{stack}" for stack in stacks} <= waited_for, (
        "-check-setup must wait for the four stacks"
    )


def test_same_config_gives_byte_identical_inputs():
    """So a repeated `pulumi up` finds nothing to run."""
    assert run_program().changed_from(run_program()) == []


def test_pool_password_change_reruns_only_store_and_restart():
    after = run_program({"condor-annex:poolPassword": "another-secret-password"})
    assert after.changed_from(run_program()) == ["personal-condor-pool-password", "personal-condor-start"]


def test_collector_port_change_reconfigures_and_restarts():
    old_line = {"condor-annex:condorVersion": "24.0.23"}
    after = run_program({**old_line, "condor-annex:collectorPort": "9700"})
    changed = set(after.changed_from(run_program(old_line)))
    assert {"personal-condor-configure", "personal-condor-start"} <= changed
    assert "personal-condor-install" not in changed and "personal-condor-pool-password" not in changed
    assert "COLLECTOR_HOST = $(FULL_HOSTNAME):9700" in after.commands()["personal-condor-configure"]["create"]


PERSONAL_25 = """
use security: user_based
use role: personal
CONDOR_HOST = $(FULL_HOSTNAME)
LOCAL_DIR = {home}/local
"""


def test_25_0_line_is_an_hpc_annex_access_point_on_the_opened_port(tmp_path):
    """Read through HTCondor's own parser (the wheel), after make-personal-from-tarball's settings."""
    from tests.components.test_annex_client import parse

    text = condor_config_text(CondorRelease("25.0.13"), 9700, None)
    assert "SEC_DAEMON_AUTHENTICATION_METHODS" not in text and "SEC_PASSWORD_FILE" not in text
    names = ["HPC_ANNEX_ENABLED", "COLLECTOR_HOST", "ANNEX_COLLECTOR", "NETWORK_INTERFACE", "FULL_HOSTNAME"]
    names += ["SEC_PASSWORD_FILE", "SHARED_PORT_PORT"]
    values = parse(PERSONAL_25.format(home=tmp_path) + text, names, str(tmp_path))
    host = values["FULL_HOSTNAME"]
    assert values["HPC_ANNEX_ENABLED"] is True and values["NETWORK_INTERFACE"] == "*"
    assert values["COLLECTOR_HOST"] == f"{host}:9700" and str(values["SHARED_PORT_PORT"]) == "9700"
    assert values["ANNEX_COLLECTOR"] == f"{host}:9700?sock=ap_collector"
    assert values["SEC_PASSWORD_FILE"].endswith("/passwords.d/POOL")


@pytest.mark.parametrize("version", ["25.0.13", "24.0.23", "8.7.3"])
def test_annex_instances_call_back_at_the_public_name_and_the_pool_stays_local(tmp_path, version: str):
    """A cloud VM or a host behind NAT is not called by its own hostname: condor_annex (subsystem
    ANNEX) copies the collector's address into each instance and hands it to the connectivity check."""
    from tests.components.test_annex_client import parse

    release = CondorRelease(version)
    text = condor_config_text(release, 9700, "submit.example.org")
    config = PERSONAL_25.format(home=tmp_path) + text
    names = ["COLLECTOR_HOST", "ANNEX_COLLECTOR", "FULL_HOSTNAME"]
    annex = parse(config, names, str(tmp_path), subsystem="ANNEX")
    pool = parse(config, names, str(tmp_path))
    assert annex["COLLECTOR_HOST"] == "submit.example.org:9700"
    assert pool["COLLECTOR_HOST"] == f"{pool['FULL_HOSTNAME']}:9700"
    if release.hpc_annex:
        assert annex["ANNEX_COLLECTOR"] == "submit.example.org:9700?sock=ap_collector"
        assert pool["ANNEX_COLLECTOR"] == f"{pool['FULL_HOSTNAME']}:9700?sock=ap_collector"


def test_the_public_name_is_host_or_publicname_and_local_leaves_it_to_htcondor():
    def config_of(program) -> str:
        return program.named("personal-condor-configure").inputs["create"]

    assert "ANNEX.COLLECTOR_HOST = 203.0.113.7:9618" in config_of(run_program())
    named = run_program(
        {
            "condor-annex:publicName": "submit.example.org",
            "condor-annex:condorIngressCidrs": '["203.0.113.7/32"]',
            "condor-annex:sshIngressCidrs": "[]",
        }
    )
    local = {
        "condor-annex:host": "localhost",
        "condor-annex:sshUser": None,
        "condor-annex:sshHostKey": None,
        "condor-annex:sshIngressCidrs": "[]",
    }
    unnamed = run_program({**local, "condor-annex:condorIngressCidrs": '["203.0.113.7/32"]'})
    assert "ANNEX.COLLECTOR_HOST" not in config_of(unnamed)
    assert any("publicName is unset" in line for line in unnamed.logs)
    with_name = run_program({**local, "condor-annex:publicName": "198.51.100.4"})
    assert "ANNEX.COLLECTOR_HOST = 198.51.100.4:9618" in config_of(with_name)
    ingress = with_name.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert {rule.inputs["cidrIpv4"] for rule in ingress} == {"198.51.100.4/32"}, "the public name's /32"
    assert "ANNEX.COLLECTOR_HOST = submit.example.org:9618" in config_of(named)


def test_the_25_0_schedd_finds_the_negotiator_through_the_pools_collector(tmp_path):
    """With HPC_ANNEX the schedd has two collectors and asks one at random for the negotiator unless
    HAD_USE_PRIMARY; the AP collector has none, so on a real 25.0.13 every other reschedule was lost."""
    from tests.components.test_annex_client import parse

    text = condor_config_text(CondorRelease("25.0.13"), 9700, None)
    names = ["COLLECTOR_HOST", "HAD_USE_PRIMARY", "FULL_HOSTNAME"]
    schedd = parse(PERSONAL_25.format(home=tmp_path) + text, names, str(tmp_path), subsystem="SCHEDD")
    host = schedd["FULL_HOSTNAME"]
    assert schedd["COLLECTOR_HOST"].split() == [f"{host}:9700", f"{host}:9700?sock=ap_collector"]
    assert schedd["HAD_USE_PRIMARY"] is True, "the schedd must ask the first, the pool's, collector"
    tool = parse(PERSONAL_25.format(home=tmp_path) + text, ["HAD_USE_PRIMARY"], str(tmp_path))
    assert tool["HAD_USE_PRIMARY"] is not True, "only the schedd's lookups change"


def test_the_pool_password_goes_where_each_line_reads_it():
    assert CondorRelease("25.0.13").pool_password_file == "passwords.d/POOL"
    assert CondorRelease("24.0.23").pool_password_file == "condor_pool_password"
    text = condor_config_text(CondorRelease("24.0.23"), 9618, None)
    assert "SEC_PASSWORD_FILE = $(LOCAL_DIR)/condor_pool_password" in text and "HPC_ANNEX" not in text


@pytest.mark.parametrize("name", STEPS + CLIENT_STEPS)
def test_every_step_is_safe_on_a_stock_sshd(name: str):
    step = run_program().named(name)
    assert step.inputs["addPreviousOutputInEnv"] is False, f"{name} would send PULUMI_COMMAND_* env requests"
    assert not step.inputs.get("environment"), f"{name} sends SSH environment requests"
    assert step.delete_before_replace, f"{name}: create-before-delete would let the old delete undo the new"
    assert step.inputs["delete"].endswith(" delete") and step.inputs["create"].endswith(" create")
    assert step.inputs["create"].startswith("bash -c '")


def test_secret_steps_stay_quiet_and_use_stdin():
    program = run_program()
    password = BASE_CONFIG["condor-annex:poolPassword"]
    store = program.named("personal-condor-pool-password")
    assert "stdin" in store.secret_inputs
    assert store.inputs["logging"] == "none"
    assert "stderr" in store.additional_secret_outputs
    # What each version then stores is decoded and compared in tests/e2e/test_machine.py.
    for version in ("24.0.23", "10.0.9", "8.7.3"):
        step = run_program({"condor-annex:condorVersion": version}).named("personal-condor-pool-password")
        assert 'condor_store_cred -c add -f "$staged" 2>&1' in step.inputs["create"], version
        assert step.inputs["stdin"] == password + "\n", f"{version}: the prompt reads up to a newline"
    keys = program.named("annex-client-key-files")
    assert "stdin" in keys.secret_inputs and keys.inputs["logging"] == "none"


def test_connection_options():
    program = run_program(
        {
            "condor-annex:sshPort": "2222",
            "condor-annex:sshHostKey": HOST_KEY,
        }
    )
    connection = program.named("personal-condor-install").inputs["connection"]
    assert connection["port"] == 2222 and connection["user"] == "annex"
    assert connection["hostKey"] == HOST_KEY
    assert connection["dialErrorLimit"] >= 10


@pytest.mark.parametrize(
    "version, own_key", [("8.7.3", False), ("9.0.17", True), ("10.0.9", True), ("24.0.23", True), ("25.0.13", False)]
)
def test_tokens_are_not_signed_with_the_password_every_annex_tarball_carries(version: str, own_key: bool):
    """9.0 to 24.0 sign tokens with SEC_PASSWORD_FILE by default, which condor_annex copies into
    every annex tarball; 25.0's tarballs carry a password of their own, and 8.7 has no tokens."""
    text = condor_config_text(CondorRelease(version), 9618, None)
    assert ("SEC_TOKEN_POOL_SIGNING_KEY_FILE = $(LOCAL_DIR)/token_signing_key" in text) is own_key
