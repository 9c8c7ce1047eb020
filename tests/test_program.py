"""Whole-program promises: secrets stay secret, everything is parented and deletable."""

from __future__ import annotations

import json

import pytest

from tests.harness import Program, run_program, secret_config, sentinels


@pytest.fixture(scope="module")
def program() -> Program:
    return run_program(secret_config())


def test_no_secret_in_plain_inputs_commands_outputs_or_logs(program: Program):
    for registration in program.registrations:
        for key, value in registration.inputs.items():
            if key in registration.secret_inputs:
                continue
            text = json.dumps(value, default=str)
            for sentinel in sentinels():
                assert sentinel not in text, f"{registration.name}.{key} carries a secret in plain state"
    for name, output in program.outputs.items():
        if not output.secret:
            text = json.dumps(output.value, default=str)
            assert not any(sentinel in text for sentinel in sentinels()), f"stack output {name} leaks a secret"
    assert not any(sentinel in line for line in program.logs for sentinel in sentinels())


def test_secrets_reach_the_machine_only_on_stdin_or_the_connection(program: Program):
    for step in program.of_type("command:remote:Command"):
        for key in ("create", "delete", "update", "environment", "triggers"):
            text = json.dumps(step.inputs.get(key), default=str)
            assert not any(sentinel in text for sentinel in sentinels()), f"{step.name}.{key} carries a secret"
        assert step.inputs["connection"]["privateKey"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
        assert "connection" in step.secret_inputs


def test_steps_that_carry_a_secret_keep_their_output_out_of_logs_and_state(program: Program):
    carrying = [step for step in program.of_type("command:remote:Command") if step.inputs.get("stdin")]
    assert {step.name for step in carrying} == {"personal-condor-pool-password", "annex-client-key-files"}
    for step in carrying:
        assert "stdin" in step.secret_inputs, f"{step.name}'s stdin is plain"
        assert step.inputs["logging"] == "none", f"{step.name} streams its output to the Pulumi log"
        assert "stderr" in step.additional_secret_outputs, f"{step.name}'s stderr is kept in plain state"


def test_every_secret_output_is_marked(program: Program):
    for name in ("secretAccessKey",):
        assert program.outputs[name].secret, f"stack output {name} is not secret"


def test_destroy_can_delete_everything(program: Program):
    for registration in program.registrations:
        assert not registration.retain_on_delete, f"{registration.name} would outlive pulumi destroy"
        assert not registration.protect, f"{registration.name} is protected from pulumi destroy"


def test_every_resource_belongs_to_a_component(program: Program):
    for registration in program.registrations:
        assert registration.parent, f"{registration.name} has no parent"
        if not registration.type.startswith("condor-annex:"):
            assert "condor-annex:" in registration.parent, f"{registration.name} is not under a component"


def test_setup_is_bounded_by_its_slowest_branch_not_a_sequence(program: Program):
    """The machine starts installing at once (after its preflight and recording ~/.condor); user_config
    waits for at most three AWS creates in a row."""
    install = program.named("personal-condor-install")
    assert [link.name for link in program.longest_chain(install)] == ["preflight", "condor-dir", install.name]
    chain = program.longest_chain(program.named("annex-client-user-config"))
    aws_links = [link.name for link in chain if link.type.startswith("aws:")]
    assert len(aws_links) <= 3, f"user_config waits for a chain of AWS creates: {aws_links}"


def test_evaluating_twice_changes_nothing():
    """A repeated `pulumi up` with the same config has nothing to update, replace or run."""
    assert run_program(secret_config()).changed_from(run_program(secret_config()), type_prefix="") == []


def test_arns_name_the_configured_region():
    """Literal ARNs in a region other than the default, so a region written into the code shows."""
    program = run_program({"aws:region": "eu-west-2"})
    prefix = "arn:aws:lambda:eu-west-2:123456789012:function:"
    assert program.outputs["odiLeaseFunctionArn"].value == prefix + "HTCondorAnnex-odiLease"
    assert program.outputs["sfrLeaseFunctionArn"].value == prefix + "HTCondorAnnex-sfrLease"
    assert program.outputs["connectivityFunctionArn"].value == prefix + "HTCondorAnnex-CheckConnectivity"
    assert program.outputs["userConfigKnobs"].value["eu_west_2.ANNEX_DEFAULT_ODI_LEASE_FUNCTION_ARN"] == (
        prefix + "HTCondorAnnex-odiLease"
    )
    permission = next(r for r in program.of_type("aws:lambda/permission:Permission"))
    assert permission.inputs["sourceArn"] == "arn:aws:events:eu-west-2:123456789012:rule/*"
    policy_text = next(r for r in program.of_type("aws:iam/policy:Policy")).inputs["policy"]
    assert "arn:aws:events:eu-west-2:123456789012:rule/*" in policy_text
    assert "arn:aws:cloudformation:eu-west-2:123456789012:stack/HTCondorAnnex-*/*" in policy_text
    assert "us-east-1" not in json.dumps([r.inputs for r in program.registrations], default=str)
