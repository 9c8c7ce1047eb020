"""The annex user's policies: exactly what condor_annex calls, scoped to this stack, region by region."""

import json

import pytest

from components.contract import KEY_PAIR_NAME
from components.settings import ConfigError
from tests.harness import ACCOUNT_ID, Program, policy, run_program, statements_by_sid


@pytest.fixture(scope="module")
def program() -> Program:
    return run_program()


def all_statements(program: Program, regions: list[str]) -> dict:
    """The inline policy's statements and each region's, keyed "<region>/<Sid>" for the latter."""
    statements = statements_by_sid(policy(program.named("annex-user-policy")))
    for region in regions:
        region_statements = statements_by_sid(policy(program.named(f"annex-user-{region}")))
        statements |= {f"{region}/{sid}": statement for sid, statement in region_statements.items()}
    return statements


@pytest.fixture(scope="module")
def statements(program: Program) -> dict:
    return all_statements(program, ["us-east-1"])


def actions(statement: dict) -> set[str]:
    return {statement["Action"]} if isinstance(statement["Action"], str) else set(statement["Action"])


def test_exactly_the_calls_condor_annex_makes(statements: dict):
    granted = set().union(*(actions(s) for s in statements.values() if s["Effect"] == "Allow"))
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
    # The one Deny: rules on custom buses, which the rules' Allow (rule/*) would otherwise match.
    denied = {sid: s for sid, s in statements.items() if s["Effect"] == "Deny"}
    assert list(denied) == ["us-east-1/NoRulesOnOtherBuses"]
    assert denied["us-east-1/NoRulesOnOtherBuses"]["Resource"] == f"arn:aws:events:us-east-1:{ACCOUNT_ID}:rule/*/*"


def test_no_key_can_make_an_instance_look_like_an_annex_or_aim_a_rule_elsewhere(program: Program, statements: dict):
    """The escalation route: tag another instance `htcondor:AnnexName`, aim a rule with an expired
    lease at a lease function. Tags come only with RunInstances (AWS's tagging guide, ec2:CreateAction),
    and rules aim only at this user's own two functions, every target of a call (ForAllValues)."""
    outputs = {name: output.value for name, output in program.outputs.items()}
    assert statements["us-east-1/TagAnnexInstances"]["Condition"] == {
        "StringEquals": {"ec2:CreateAction": "RunInstances"}
    }
    assert statements["us-east-1/AimRulesAtOwnLeaseFunctions"]["Action"] == "events:PutTargets"
    assert statements["us-east-1/AimRulesAtOwnLeaseFunctions"]["Condition"] == {
        "ForAllValues:ArnEquals": {"events:TargetArn": [outputs["odiLeaseFunctionArn"], outputs["sfrLeaseFunctionArn"]]}
    }
    assert "events:PutTargets" not in actions(statements["us-east-1/ManageLeaseRules"])


def test_no_wildcard_resource_without_a_region_condition(statements: dict):
    for sid, statement in statements.items():
        if statement["Resource"] == "*":
            assert statement["Condition"] == {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}, sid


def test_scoped_to_this_stacks_resources(program: Program, statements: dict):
    outputs = {name: output.value for name, output in program.outputs.items()}
    assert statements["us-east-1/CheckConnectivity"]["Resource"] == outputs["connectivityFunctionArn"]
    assert statements["us-east-1/InspectLeaseFunctions"]["Resource"] == [
        outputs["odiLeaseFunctionArn"],
        outputs["sfrLeaseFunctionArn"],
    ]
    assert (
        statements["us-east-1/UploadAnnexConfig"]["Resource"] == f"arn:aws:s3:::{outputs['bucketName']}/config-*.tar.gz"
    )
    assert statements["us-east-1/PassInstanceRole"]["Resource"] == outputs["instanceRoleArn"]
    assert statements["us-east-1/PassInstanceRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}
    }
    launch = statements["us-east-1/LaunchAnnexInstances"]["Resource"]
    assert f"arn:aws:ec2:us-east-1:{ACCOUNT_ID}:security-group/{outputs['securityGroupId']}" in launch
    assert f"arn:aws:ec2:us-east-1:{ACCOUNT_ID}:key-pair/{KEY_PAIR_NAME}" in launch
    assert all(":us-east-1:" in arn for arn in launch), launch
    assert set(statements) == {"PassSpotFleetRole"} | {s for s in statements if s.startswith("us-east-1/")}


def test_access_key_waits_for_every_policy_and_secret_is_secret(program: Program):
    key = program.named("annex-user-key")
    attachment = program.named("annex-user-us-east-1-attachment")
    assert attachment.inputs["policyArn"] == program.named("annex-user-us-east-1").outputs["arn"]
    region_policy = program.named("annex-user-us-east-1")
    assert {program.named("annex-user-policy").urn, region_policy.urn} <= set(key.dependencies)
    assert attachment.urn in program.named("annex-client-check-setup-us-east-1").dependencies
    assert program.outputs["secretAccessKey"].secret
    assert not program.outputs["accessKeyId"].secret
    assert program.named("annex-user").inputs["forceDestroy"] is True


def test_one_user_for_every_region_each_region_its_own_policy():
    regions = ["eu-west-2", "ap-southeast-2"]
    program = run_program({"condor-annex:regions": json.dumps(regions)})
    assert [len(program.of_type(f"aws:iam/{kind}")) for kind in ("user:User", "accessKey:AccessKey")] == [1, 1]
    assert len(program.of_type("aws:iam/userPolicyAttachment:UserPolicyAttachment")) == 2
    statements = all_statements(program, regions)
    by_region = program.outputs["byRegion"].value
    for region in regions:
        assert statements[f"{region}/ReportAnnexStatus"]["Condition"] == {
            "StringEquals": {"aws:RequestedRegion": region}
        }
        assert statements[f"{region}/PassInstanceRole"]["Resource"] == by_region[region]["instanceRoleArn"]
        launch = statements[f"{region}/LaunchAnnexInstances"]["Resource"]
        group = by_region[region]["securityGroupId"]
        assert f"arn:aws:ec2:{region}:{ACCOUNT_ID}:security-group/{group}" in launch
        assert f"arn:aws:ec2:{region}:{ACCOUNT_ID}:key-pair/{KEY_PAIR_NAME}" in launch
        assert all(f":{region}:" in arn for arn in launch), "no region but its own in a region's policy"
        assert statements[f"{region}/CheckConnectivity"]["Resource"] == by_region[region]["connectivityFunctionArn"]
        assert (
            statements[f"{region}/CheckSetup"]["Resource"]
            == f"arn:aws:cloudformation:{region}:{ACCOUNT_ID}:stack/HTCondorAnnex-*/*"
        )
    assert "us-east-1" not in json.dumps(statements), "no region but the configured ones"


def test_a_new_key_generation_is_a_new_key_the_key_files_and_every_check_wait_for():
    """Raising annexKeyGeneration: a key under a new name (so the engine makes it first and deletes
    the old one, gone from the program, after every create and update), whose id and secret are
    what the key files get and whose id each region's check runs again for; nothing else on the
    machine runs, and no other AWS resource changes."""
    two = {"condor-annex:regions": '["us-east-1", "eu-west-2"]'}
    before, after = run_program(two), run_program({**two, "condor-annex:annexKeyGeneration": "2"})
    keys = after.of_type("aws:iam/accessKey:AccessKey")
    assert [key.name for key in before.of_type("aws:iam/accessKey:AccessKey")] == ["annex-user-key"]
    assert [key.name for key in keys] == ["annex-user-key-2"]
    assert sorted(after.changed_from(before)) == [
        "annex-client-check-setup-eu-west-2",
        "annex-client-check-setup-us-east-1",
        "annex-client-key-files",
    ]
    assert sorted(after.changed_from(before, "aws:")) == ["annex-user-key", "annex-user-key-2"]
    new_key = keys[0]
    for name in ("annex-client-key-files", "annex-client-check-setup-us-east-1", "annex-client-check-setup-eu-west-2"):
        assert new_key.urn in after.named(name).dependencies, f"{name} does not wait for the new key"
    new_id = after.outputs["accessKeyId"].value
    assert new_id != before.outputs["accessKeyId"].value
    assert f"ACCESS_KEY_ID={new_id}" in after.named("annex-client-check-setup-eu-west-2").inputs["create"]


@pytest.mark.parametrize("generation", ["0", "-1", "2.5", "10000", "two"])
def test_a_key_generation_that_is_not_a_small_whole_number_is_refused(generation: str):
    with pytest.raises(ConfigError, match="condor-annex:annexKeyGeneration"):
        run_program({"condor-annex:annexKeyGeneration": generation})
