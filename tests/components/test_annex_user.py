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
            assert statement["Condition"] == {"StringEquals": {"aws:RequestedRegion": ["us-east-1"]}}, sid


def test_scoped_to_this_stacks_resources(program: Program, statements: dict):
    outputs = {name: output.value for name, output in program.outputs.items()}
    assert statements["CheckConnectivity"]["Resource"] == [outputs["connectivityFunctionArn"]]
    assert statements["InspectLeaseFunctions"]["Resource"] == [
        outputs["odiLeaseFunctionArn"],
        outputs["sfrLeaseFunctionArn"],
    ]
    assert statements["UploadAnnexConfig"]["Resource"] == [f"arn:aws:s3:::{outputs['bucketName']}/config-*.tar.gz"]
    assert statements["PassInstanceRole"]["Resource"] == [outputs["instanceRoleArn"]]
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


def test_one_user_for_every_region_each_region_its_own_resources():
    program = run_program({"condor-annex:regions": '["eu-west-2", "ap-southeast-2"]'})
    assert [len(program.of_type(f"aws:iam/{kind}")) for kind in ("user:User", "accessKey:AccessKey")] == [1, 1]
    statements = statements_by_sid(policy(program.named("annex-user-policy")))
    by_region = program.outputs["byRegion"].value
    assert statements["ReportAnnexStatus"]["Condition"] == {
        "StringEquals": {"aws:RequestedRegion": ["eu-west-2", "ap-southeast-2"]}
    }
    assert statements["PassInstanceRole"]["Resource"] == [
        by_region["eu-west-2"]["instanceRoleArn"],
        by_region["ap-southeast-2"]["instanceRoleArn"],
    ]
    launch = statements["LaunchAnnexInstances"]["Resource"]
    for region in ("eu-west-2", "ap-southeast-2"):
        group = by_region[region]["securityGroupId"]
        assert f"arn:aws:ec2:{region}:{ACCOUNT_ID}:security-group/{group}" in launch
        assert f"arn:aws:ec2:{region}:{ACCOUNT_ID}:key-pair/{KEY_PAIR_NAME}" in launch
        assert by_region[region]["connectivityFunctionArn"] in statements["CheckConnectivity"]["Resource"]
        assert (
            f"arn:aws:cloudformation:{region}:{ACCOUNT_ID}:stack/HTCondorAnnex-*/*"
            in statements["CheckSetup"]["Resource"]
        )
    assert not any(":us-east-1:" in arn for arn in launch), "no region but the configured ones"
