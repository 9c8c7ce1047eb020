import json

import pytest

from components.contract import KEY_PAIR_NAME
from components.key_pair import public_key_line
from tests.harness import run_program


def test_key_pair_imports_the_public_key_the_machine_step_printed():
    program = run_program()
    key_pair = program.named("annex-key-pair-us-east-1")
    assert key_pair.type == "aws:ec2/keyPair:KeyPair"
    assert key_pair.inputs["keyName"] == KEY_PAIR_NAME
    make = program.named("annex-key-pair-us-east-1-make")
    assert make.urn in key_pair.dependencies
    banner, public_key = make.outputs["stdout"].splitlines()
    assert banner == "Welcome to the lab machine", "the mocks print what a user's bashrc may print"
    assert key_pair.inputs["publicKey"] == public_key
    assert "KEY_PAIR_FILE=HTCondorAnnex-KeyPair.us-east-1.pem" in make.inputs["create"]
    assert "ssh-keygen -q -t rsa -b 4096" in make.inputs["create"]
    assert program.outputs["keyPairName"].value == KEY_PAIR_NAME


def test_no_private_key_anywhere_in_the_program():
    program = run_program()
    assert "keyPairPrivateKey" not in program.outputs
    assert not [r.name for r in program.registrations if r.type.startswith("tls:")]
    everything = json.dumps([[r.inputs, r.outputs] for r in program.registrations], default=str)
    assert "PRIVATE KEY-----" not in everything.replace("'PRIVATE KEY-----'", "")


def test_the_key_pair_waits_for_nothing_on_aws_and_check_setup_waits_for_it():
    program = run_program()
    make = program.named("annex-key-pair-us-east-1-make")
    # Besides the preflight, which every step is tied to (tests/components/test_machine_options.py).
    assert {program.by_urn(urn).name for urn in make.dependencies} == {"preflight", "condor-dir"}
    check = program.named("annex-client-check-setup-us-east-1")
    assert program.named("annex-key-pair-us-east-1").urn in check.dependencies


def test_the_public_key_is_the_key_line_of_what_the_step_printed():
    key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAACAQC7 HTCondorAnnex-KeyPair.pem"
    assert public_key_line(f"{key}\n") == key
    assert public_key_line(f"Last login: today\nssh-rsa in the motd\n{key}\n") == key
    with pytest.raises(ValueError, match="printed no ssh-rsa public key"):
        public_key_line("Welcome\n")
