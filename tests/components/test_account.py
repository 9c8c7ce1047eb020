"""What the account already holds stops the up before any AWS resource, with what to do about it."""

from __future__ import annotations

import json

import pytest

from components.account import AccountConflict
from components.contract import CONNECTIVITY_FUNCTION_NAME, KEY_PAIR_NAME, STACK_NAMES
from tests.harness import Program, RegionHolds, default_vpc_id, run_program

THIS_STACK = {"managed-by": "pulumi", "pulumi-project": "condor-annex", "pulumi-stack": "test"}
ANOTHER_STACK = {**THIS_STACK, "pulumi-stack": "colleague"}
# What condor_annex -setup leaves: its four stacks, the connectivity function they made (its lease
# functions carry CloudFormation's names), its log group once it ran, and the key pair; no tags.
EARLIER_SETUP = RegionHolds(
    functions={CONNECTIVITY_FUNCTION_NAME: {}, "HTCondorAnnex-LambdaFunctions-odiLeaseFunction-1X2Y3Z": {}},
    log_groups={f"/aws/lambda/{CONNECTIVITY_FUNCTION_NAME}": {}},
    key_pairs={KEY_PAIR_NAME: {}},
    stacks={name: {} for name in STACK_NAMES},
)


def refused(account: dict[str, RegionHolds], config: dict[str, str] | None = None) -> tuple[str, Program]:
    program = Program()
    with pytest.raises(AccountConflict) as raised:
        run_program(config, into=program, account=account)
    made = [r.name for r in program.registrations if r.type.startswith(("aws:", "command:"))]
    assert made == ["preflight"], f"{made} registered before the refusal; only the read-only preflight may be"
    return str(raised.value), program


def test_an_earlier_condor_annex_setup_is_refused_naming_each_name_and_the_way_out():
    message, _ = refused({"us-east-1": EARLIER_SETUP})
    for held in (
        f"Lambda function {CONNECTIVITY_FUNCTION_NAME} in us-east-1",
        f"log group /aws/lambda/{CONNECTIVITY_FUNCTION_NAME} in us-east-1",
        f"key pair {KEY_PAIR_NAME} in us-east-1",
        *(f"CloudFormation stack {stack} in us-east-1" for stack in STACK_NAMES),
    ):
        assert f"{held} already exists, held by no Pulumi stack (condor_annex -setup" in message, held
    assert "HTCondorAnnex-LambdaFunctions-odiLeaseFunction" not in message, "a name we do not use is no conflict"
    assert "remove it: delete the CloudFormation stacks" in message and "pulumi import" in message


def test_another_stack_of_this_program_in_the_region_is_refused_naming_it():
    holds = RegionHolds(functions={"HTCondorAnnex-odiLease": ANOTHER_STACK}, stacks={STACK_NAMES[0]: ANOTHER_STACK})
    message, _ = refused({"us-east-1": holds})
    assert "Lambda function HTCondorAnnex-odiLease in us-east-1 already exists, held by Pulumi stack" in message
    assert "condor-annex/colleague" in message and "or join it: set joinStack to the <project>/<stack>" in message


# What the provider says when the deployer may not read: AWS's AccessDenied, as the SDK words it.
DENIED = (
    "reading CloudFormation Stack (HTCondorAnnex-ConfigurationBucket): operation error CloudFormation: "
    "GetTemplate, https response error StatusCode: 403, api error AccessDenied: User: "
    "arn:aws:iam::123456789012:user/deployer is not authorized to perform: cloudformation:GetTemplate"
)
EXPIRED = "operation error EC2: DescribeKeyPairs, https response error StatusCode: 400, api error RequestExpired"


@pytest.mark.parametrize(
    "token, error, named",
    [
        (
            "aws:cloudformation/getStack:getStack",
            DENIED,
            "cloudformation:DescribeStacks and cloudformation:GetTemplate",
        ),
        ("aws:ec2/getKeyPair:getKeyPair", EXPIRED, "ec2:DescribeKeyPairs"),
    ],
    ids=["access-denied", "expired-credentials"],
)
def test_a_read_that_fails_for_another_reason_than_not_found_stops_the_up(token: str, error: str, named: str):
    """Only "not found" means free: a denied or failed read would otherwise pass the check and let
    the up collide part-way with an earlier setup it could not see."""
    held = RegionHolds(**{**EARLIER_SETUP.__dict__, "errors": {token: error}})
    message, _ = refused({"us-east-1": held})
    assert "could not tell whether" in message and "in us-east-1, so nothing was created" in message
    assert error in message and f"need {named} in us-east-1" in message


def test_a_stack_renamed_since_its_up_is_told_how_to_get_back_to_its_resources():
    """`pulumi stack rename` keeps the resources, whose tags still carry the former name: the up
    cannot tell them from a colleague's stack of the project, so it names the way back."""
    former = {**THIS_STACK, "pulumi-stack": "before-rename"}
    holds = RegionHolds(functions={CONNECTIVITY_FUNCTION_NAME: former}, key_pairs={KEY_PAIR_NAME: former})
    message, _ = refused({"us-east-1": holds})
    assert "held by Pulumi stack condor-annex/before-rename" in message
    assert "rename it back (`pulumi stack rename before-rename`)" in message
    earlier_setup, _ = refused({"us-east-1": EARLIER_SETUP})
    assert "pulumi stack rename" not in earlier_setup, "an untagged earlier setup is no renamed stack"


def test_what_this_stack_made_itself_lets_a_rerun_through():
    holds = RegionHolds(
        functions={CONNECTIVITY_FUNCTION_NAME: THIS_STACK},
        log_groups={f"/aws/lambda/{CONNECTIVITY_FUNCTION_NAME}": THIS_STACK},
        key_pairs={KEY_PAIR_NAME: THIS_STACK},
        stacks={name: THIS_STACK for name in STACK_NAMES},
    )
    program = run_program(account={"us-east-1": holds})
    assert program.named("annex-us-east-1-functions-connectivity").inputs["name"] == CONNECTIVITY_FUNCTION_NAME


def test_a_region_without_a_default_vpc_is_refused_with_the_command_that_makes_one():
    regions = {"condor-annex:regions": json.dumps(["us-east-1", "eu-west-2"])}
    message, _ = refused({"eu-west-2": RegionHolds(default_vpc=False)}, regions)
    assert "eu-west-2 has no default VPC" in message and "us-east-1 has no default VPC" not in message
    assert "aws ec2 create-default-vpc --region eu-west-2" in message
    assert "condor_annex -setup" not in message, "no remedy for names nobody holds"


def test_the_security_group_goes_in_the_default_vpc_found():
    program = run_program()
    assert program.named("annex-us-east-1-sg").inputs["vpcId"] == default_vpc_id("us-east-1")
    asked = [token for token, _ in program.calls]
    assert "aws:ec2/getVpcs:getVpcs" in asked and "aws:ec2/getVpc:getVpc" not in asked


def test_every_provider_waits_for_the_machines_preflight():
    """Each region's provider and the account's."""
    program = run_program({"condor-annex:regions": json.dumps(["us-east-1", "eu-west-2"])})
    preflight = program.named("preflight").urn
    providers = program.of_type("pulumi:providers:aws")
    assert len(providers) == 3 and all(preflight in provider.dependencies for provider in providers)
    condor_dir = program.named("condor-dir")
    assert condor_dir.dependencies == [preflight]
