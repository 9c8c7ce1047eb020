"""The annex user's policy: exactly what condor_annex calls, scoped to this stack."""

import pytest

from components.contract import KEY_PAIR_NAME
from tests.harness import ACCOUNT_ID, Program, policy, run_program, statements_by_sid


@pytest.fixture(scope="module")
def program() -> Program:
    return run_program()


@pytest.fixture(scope="module")
def statements(program: Program) -> dict:
    return statements_by_sid(policy(program.named("annex-user-policy")))


def actions(statement: dict) -> set[str]:
    return {statement["Action"]} if isinstance(statement["Action"], str) else set(statement["Action"])


def test_exactly_the_calls_condor_annex_makes(statements: dict):
    granted = set().union(*(actions(s) for s in statements.values()))
    assert granted == {
        "lambda:InvokeFunction",
        "lambda:GetFunction",
        "s3:PutObject",
        "events:PutRule",
        "events:PutTargets",
        "events:RemoveTargets",
        "events:DeleteRule",
        "ec2:RunInstances",
        "ec2:CreateTags",
        "ec2:RequestSpotFleet",
        "ec2:DescribeInstances",
        "ec2:DescribeSpotFleetRequests",
        "iam:PassRole",
        "cloudformation:DescribeStacks",
    }
    assert all(s["Effect"] == "Allow" for s in statements.values())


def test_no_wildcard_resource_without_a_region_condition(statements: dict):
    for sid, statement in statements.items():
        if statement["Resource"] == "*":
            assert statement["Condition"] == {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}, sid


def test_scoped_to_this_stacks_resources(program: Program, statements: dict):
    outputs = {name: output.value for name, output in program.outputs.items()}
    assert statements["CheckConnectivity"]["Resource"] == outputs["connectivityFunctionArn"]
    assert statements["InspectLeaseFunctions"]["Resource"] == [
        outputs["odiLeaseFunctionArn"],
        outputs["sfrLeaseFunctionArn"],
    ]
    assert statements["UploadAnnexConfig"]["Resource"] == f"arn:aws:s3:::{outputs['bucketName']}/config-*.tar.gz"
    assert statements["PassInstanceRole"]["Resource"] == outputs["instanceRoleArn"]
    assert statements["PassInstanceRole"]["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
    launch = statements["LaunchAnnexInstances"]["Resource"]
    assert f"arn:aws:ec2:us-east-1:{ACCOUNT_ID}:security-group/{outputs['securityGroupId']}" in launch
    assert f"arn:aws:ec2:us-east-1:{ACCOUNT_ID}:key-pair/{KEY_PAIR_NAME}" in launch
    assert all(":us-east-1:" in arn for arn in launch), launch


def test_access_key_waits_for_policy_and_secret_is_secret(program: Program):
    key = program.named("annex-user-key")
    assert program.named("annex-user-policy").urn in key.dependencies
    assert program.outputs["secretAccessKey"].secret
    assert not program.outputs["accessKeyId"].secret
    assert program.named("annex-user").inputs["forceDestroy"] is True
