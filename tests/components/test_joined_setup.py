"""A second user joins the setup a first user's stack made in the same account (`joinStack`)."""

from __future__ import annotations

import json

import pytest

from components.account import AccountConflict
from components.contract import KEY_PAIR_NAME, STACK_NAMES
from components.lambdas import lease_function_name
from components.settings import ConfigError
from tests.harness import (
    ACCOUNT_ID,
    FIRST_STACK_TAGS,
    JOIN,
    Program,
    RegionHolds,
    default_vpc_id,
    first_users_setup,
    policy,
    run_program,
    statements_by_sid,
)

JOINED = "condor-annex/first"
FIRST = FIRST_STACK_TAGS
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


@pytest.fixture(scope="module")
def joined() -> Program:
    return run_program(JOIN, account={"us-east-1": first_users_setup()})


def image_parts(program: Program) -> set[str]:
    """The URNs of what builds each region's annex image: every user builds their own."""
    images = program.of_type("condor-annex:aws:AnnexImage")
    return {leaf.urn for image in images for leaf in program.resources_under(image.urn)}


def aws_types(program: Program) -> list[str]:
    return sorted(
        {r.type for r in program.registrations if r.type.startswith("aws:") and r.urn not in image_parts(program)}
    )


OWN_FUNCTIONS = {contract: lease_function_name(contract, "condor-annex/test") for contract in ("odiLease", "sfrLease")}


def test_the_joining_user_makes_everything_of_their_own_but_what_condor_annex_fixes_by_name(joined: Program):
    """Shared: the connectivity function and the marker stacks, whose names condor_annex fixes.
    Everything else is the user's own, so no user's key, lease or CIDRs reach another's annexes."""
    outside_image = [r for r in joined.registrations if r.urn not in image_parts(joined)]
    assert "aws:cloudformation/stack:Stack" not in aws_types(joined)
    functions = sorted(r.inputs["name"] for r in outside_image if r.type == "aws:lambda/function:Function")
    assert functions == sorted(OWN_FUNCTIONS.values())
    assert all(len(name) <= 64 for name in functions), "Lambda: function names of at most 64 characters"
    for own in (
        "aws:s3/bucket:Bucket",
        "aws:iam/instanceProfile:InstanceProfile",
        "aws:ec2/keyPair:KeyPair",
        "aws:ec2/securityGroup:SecurityGroup",
    ):
        assert len([r for r in outside_image if r.type == own]) == 1, own
    assert len(joined.of_type("aws:imagebuilder/image:Image")) == 1
    assert joined.named("annex-key-pair-us-east-1").inputs["keyName"] == f"{KEY_PAIR_NAME}-test"
    assert len(joined.of_type("aws:iam/user:User")) == 1 and len(joined.of_type("aws:iam/accessKey:AccessKey")) == 1


def test_nothing_of_the_first_users_is_changed(joined: Program):
    """No policy on the first user's lease role, no rule in the first user's security group."""
    holds = RegionHolds()
    assert [
        r.name for r in joined.of_type("aws:iam/rolePolicy:RolePolicy") if r.inputs["role"] == holds.lease_role
    ] == []
    groups = {r.inputs["securityGroupId"] for r in joined.of_type(INGRESS)}
    assert groups == {joined.outputs["byRegion"].value["us-east-1"]["securityGroupId"]} != {holds.security_group_id}


def test_user_config_points_at_the_shared_connectivity_function_and_at_the_users_own_parts(joined: Program):
    knobs = joined.outputs["userConfigKnobs"].value
    by_region = joined.outputs["byRegion"].value["us-east-1"]
    bucket = joined.named("annex-us-east-1-config").outputs["bucket"]
    assert knobs["us_east_1.ANNEX_DEFAULT_S3_BUCKET"] == bucket == by_region["bucketName"]
    assert knobs["us_east_1.ANNEX_DEFAULT_ODI_KEY_NAME"] == f"{KEY_PAIR_NAME}-test" == by_region["keyPairName"]
    function = f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:"
    assert knobs["us_east_1.ANNEX_DEFAULT_ODI_LEASE_FUNCTION_ARN"] == function + OWN_FUNCTIONS["odiLease"]
    assert knobs["us_east_1.ANNEX_DEFAULT_SFR_LEASE_FUNCTION_ARN"] == function + OWN_FUNCTIONS["sfrLease"]
    assert by_region["connectivityFunctionArn"] == function + "HTCondorAnnex-CheckConnectivity"
    (group,) = {r.inputs["securityGroupId"] for r in joined.of_type(INGRESS)}
    assert knobs["us_east_1.ANNEX_DEFAULT_ODI_SECURITY_GROUP_IDS"] == group == by_region["securityGroupId"]
    profile = joined.named("annex-us-east-1-instance-profile").outputs["arn"]
    assert knobs["us_east_1.ANNEX_DEFAULT_ODI_INSTANCE_PROFILE_ARN"] == profile
    assert set(by_region["checkSetupStackIds"]) == set(STACK_NAMES)


def test_the_users_lease_functions_end_only_annexes_with_their_own_profile(joined: Program):
    profile = joined.named("annex-us-east-1-instance-profile").outputs["arn"]
    bucket = joined.named("annex-us-east-1-config").outputs["bucket"]
    for contract in OWN_FUNCTIONS:
        variables = joined.named(f"annex-us-east-1-functions-{contract}").inputs["environment"]["variables"]
        assert variables == {"S3_BUCKET_NAME": bucket, "INSTANCE_PROFILE_ARN": profile}
    statements = statements_by_sid(policy(joined.named("annex-us-east-1-functions-lease-policy")))
    assert statements["TerminateAnnexInstances"]["Condition"] == {"ArnEquals": {"ec2:InstanceProfile": profile}}


def test_the_users_key_launches_only_with_their_own_parts_and_aims_rules_only_at_their_own_functions(
    joined: Program,
):
    statements = statements_by_sid(policy(joined.named("annex-user-us-east-1")))
    launch = statements["LaunchAnnexInstances"]["Resource"]
    assert f"arn:aws:ec2:us-east-1:{ACCOUNT_ID}:key-pair/{KEY_PAIR_NAME}-test" in launch
    assert not any(resource.endswith(f"key-pair/{KEY_PAIR_NAME}") for resource in launch)
    group = joined.outputs["byRegion"].value["us-east-1"]["securityGroupId"]
    assert group != RegionHolds().security_group_id
    assert f"arn:aws:ec2:us-east-1:{ACCOUNT_ID}:security-group/{group}" in launch
    bucket = joined.named("annex-us-east-1-config").outputs["bucket"]
    assert statements["UploadAnnexConfig"]["Resource"] == f"arn:aws:s3:::{bucket}/config-*.tar.gz"
    role = joined.named("annex-us-east-1-instance-role").outputs["arn"]
    assert statements["PassInstanceRole"]["Resource"] == role
    own = [f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:{name}" for name in OWN_FUNCTIONS.values()]
    assert statements["InspectLeaseFunctions"]["Resource"] == own
    assert statements["AimRulesAtOwnLeaseFunctions"]["Condition"] == {
        "ForAllValues:ArnEquals": {"events:TargetArn": own}
    }


def test_the_first_users_destroy_is_not_blocked_by_the_policies_earlier_joining_users_added():
    first = run_program()
    assert first.named("annex-us-east-1-functions-lease-role").inputs["forceDetachPolicies"] is True


def test_the_joining_users_group_admits_their_own_cidrs_whatever_the_first_users_admits():
    config = {
        **JOIN,
        "condor-annex:condorIngressCidrs": json.dumps(["198.51.100.7/32"]),
        "condor-annex:sshIngressCidrs": json.dumps(["198.51.100.7/32"]),
    }
    program = run_program(config, account={"us-east-1": first_users_setup()})
    made = {(r.inputs["fromPort"], r.inputs["cidrIpv4"]) for r in program.of_type(INGRESS)}
    assert made == {(9618, "198.51.100.7/32"), (22, "198.51.100.7/32")}
    (group,) = program.of_type("aws:ec2/securityGroup:SecurityGroup")
    assert group.inputs["vpcId"] == default_vpc_id("us-east-1")


def refused(config: dict[str, str], account: dict[str, RegionHolds]) -> str:
    program = Program()
    with pytest.raises(AccountConflict) as raised:
        run_program(config, into=program, account=account)
    made = [r.name for r in program.registrations if r.type.startswith(("aws:", "command:"))]
    assert made == ["preflight"], f"{made} registered before the refusal; only the read-only preflight may be"
    return str(raised.value)


def test_a_region_the_joined_stack_has_not_set_up_is_refused_naming_it():
    config = {**JOIN, "condor-annex:regions": json.dumps(["us-east-1", "eu-west-2"])}
    message = refused(config, {"us-east-1": first_users_setup()})
    assert f"{JOINED} has no setup in eu-west-2 to join: no Lambda function HTCondorAnnex-odiLease" in message
    assert f"CloudFormation stack {STACK_NAMES[0]}" in message
    assert "us-east-1" not in message.split("\n")[1]
    assert "`pulumi up` that stack with every region this one lists" in message


def test_a_setup_someone_else_holds_is_not_joined():
    message = refused(JOIN, {"us-east-1": first_users_setup(tags={})})
    assert (
        f"Lambda function HTCondorAnnex-odiLease in us-east-1 is held by no Pulumi stack (condor_annex -setup, "
        f"or made by hand), not by {JOINED}, the stack joinStack names"
    ) in message


def test_the_joining_users_lease_function_names_held_by_another_are_refused():
    holds = first_users_setup()
    holds.functions[OWN_FUNCTIONS["odiLease"]] = {**FIRST, "pulumi-stack": "someone"}
    message = refused(JOIN, {"us-east-1": holds})
    assert (
        f"Lambda function {OWN_FUNCTIONS['odiLease']} in us-east-1 already exists, held by Pulumi stack "
        "condor-annex/someone" in message
    )


def test_the_joining_users_key_pair_name_held_by_another_is_refused():
    holds = first_users_setup()
    holds.key_pairs[f"{KEY_PAIR_NAME}-test"] = {**FIRST, "pulumi-stack": "someone"}
    message = refused(JOIN, {"us-east-1": holds})
    assert (
        f"key pair {KEY_PAIR_NAME}-test in us-east-1 already exists, held by Pulumi stack condor-annex/someone"
        in message
    )


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"condor-annex:joinStack": "first"}, "condor-annex:joinStack = 'first': <project>/<stack>"),
        ({"condor-annex:joinStack": "condor-annex/first stack"}, "condor-annex:joinStack = 'condor-annex/first stack'"),
        ({"condor-annex:joinStack": "condor-annex/first\n"}, "condor-annex:joinStack = 'condor-annex/first\\n'"),
        ({"condor-annex:joinStack": "condor-annex/f\u00efrst"}, "condor-annex:joinStack = 'condor-annex/f\u00efrst'"),
        (
            {"condor-annex:joinStack": "condor-annex/test"},
            "condor-annex:joinStack = 'condor-annex/test': another stack",
        ),
    ],
)
def test_bad_join_settings_are_refused_naming_the_key(config: dict[str, str], expected: str):
    with pytest.raises(ConfigError) as raised:
        run_program(config, account={"us-east-1": first_users_setup()})
    assert expected in str(raised.value)


def test_the_users_check_waits_for_every_part_of_their_own(joined: Program):
    """-check-setup, and then condor_annex, must find the user's own parts made and granted."""
    check = joined.named("annex-client-check-setup-us-east-1")
    waited = {leaf.name for dependency in check.dependencies for leaf in joined.resources_under(dependency)}
    own = [
        "annex-us-east-1-config",
        "annex-us-east-1-instance-profile",
        "annex-us-east-1-instance-config-download",
        "annex-us-east-1-functions-odiLease",
        "annex-us-east-1-functions-sfrLease",
        "annex-us-east-1-sg-condor-203.0.113.7-32",
        "annex-key-pair-us-east-1",
        "annex-user-us-east-1-attachment",
    ]
    assert [name for name in own if name not in waited] == []
