"""A second user joins the setup a first user's stack made in the same account (`joinStack`)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.account import AccountConflict
from components.contract import KEY_PAIR_NAME, STACK_NAMES
from components.settings import ConfigError
from tests.harness import (
    ACCOUNT_ID,
    FIRST_STACK_TAGS,
    JOIN,
    Program,
    RegionHolds,
    first_users_setup,
    policy,
    run_program,
    statements_by_sid,
)

JOINED = "condor-annex/first"
FIRST = FIRST_STACK_TAGS
THIS_STACK = {**FIRST, "pulumi-stack": "test"}
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


def rule(cidr: str, port: int, tags: dict[str, str]) -> dict[str, Any]:
    return {"isEgress": False, "ipProtocol": "tcp", "fromPort": port, "toPort": port, "cidrIpv4": cidr, "tags": tags}


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


def test_the_joining_user_makes_their_own_bucket_profile_key_pair_image_and_user_and_nothing_shared(
    joined: Program,
):
    made = aws_types(joined)
    for shared in (
        "aws:lambda/function:Function",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:ec2/securityGroup:SecurityGroup",
    ):
        assert shared not in made, f"a joining stack made a {shared}, which the stack it joins holds"
    assert "aws:cloudformation/stack:Stack" not in made
    outside_image = [r for r in joined.registrations if r.urn not in image_parts(joined)]
    for own in ("aws:s3/bucket:Bucket", "aws:iam/instanceProfile:InstanceProfile", "aws:ec2/keyPair:KeyPair"):
        assert len([r for r in outside_image if r.type == own]) == 1, own
    assert len(joined.of_type("aws:imagebuilder/image:Image")) == 1
    assert joined.named("annex-key-pair-us-east-1").inputs["keyName"] == f"{KEY_PAIR_NAME}-test"
    assert len(joined.of_type("aws:iam/user:User")) == 1 and len(joined.of_type("aws:iam/accessKey:AccessKey")) == 1


def test_user_config_points_at_the_shared_functions_and_group_and_at_the_users_own_parts(joined: Program):
    knobs = joined.outputs["userConfigKnobs"].value
    by_region = joined.outputs["byRegion"].value["us-east-1"]
    bucket = joined.named("annex-us-east-1-config").outputs["bucket"]
    assert knobs["us_east_1.ANNEX_DEFAULT_S3_BUCKET"] == bucket == by_region["bucketName"]
    assert knobs["us_east_1.ANNEX_DEFAULT_ODI_KEY_NAME"] == f"{KEY_PAIR_NAME}-test" == by_region["keyPairName"]
    shared_function = f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:HTCondorAnnex-"
    assert knobs["us_east_1.ANNEX_DEFAULT_ODI_LEASE_FUNCTION_ARN"] == shared_function + "odiLease"
    assert knobs["us_east_1.ANNEX_DEFAULT_SFR_LEASE_FUNCTION_ARN"] == shared_function + "sfrLease"
    assert knobs["us_east_1.ANNEX_DEFAULT_ODI_SECURITY_GROUP_IDS"] == RegionHolds().security_group_id
    profile = joined.named("annex-us-east-1-instance-profile").outputs["arn"]
    assert knobs["us_east_1.ANNEX_DEFAULT_ODI_INSTANCE_PROFILE_ARN"] == profile
    assert set(by_region["checkSetupStackIds"]) == set(STACK_NAMES)


def test_the_users_key_launches_only_with_their_own_key_pair_and_profile_and_writes_only_their_bucket(
    joined: Program,
):
    statements = statements_by_sid(policy(joined.named("annex-user-us-east-1")))
    launch = statements["LaunchAnnexInstances"]["Resource"]
    assert f"arn:aws:ec2:us-east-1:{ACCOUNT_ID}:key-pair/{KEY_PAIR_NAME}-test" in launch
    assert not any(resource.endswith(f"key-pair/{KEY_PAIR_NAME}") for resource in launch)
    bucket = joined.named("annex-us-east-1-config").outputs["bucket"]
    assert statements["UploadAnnexConfig"]["Resource"] == f"arn:aws:s3:::{bucket}/config-*.tar.gz"
    role = joined.named("annex-us-east-1-instance-role").outputs["arn"]
    assert statements["PassInstanceRole"]["Resource"] == role
    assert statements["InspectLeaseFunctions"]["Resource"] == [
        f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:HTCondorAnnex-odiLease",
        f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:HTCondorAnnex-sfrLease",
    ]


def test_the_shared_lease_functions_may_delete_the_joining_users_expired_tarballs(joined: Program):
    lease_grants = [
        r for r in joined.of_type("aws:iam/rolePolicy:RolePolicy") if r.inputs["role"] == RegionHolds().lease_role
    ]
    assert len(lease_grants) == 1
    bucket = joined.named("annex-us-east-1-config").outputs["bucket"]
    assert policy(lease_grants[0])["Statement"] == [
        {
            "Sid": "DeleteExpiredAnnexConfig",
            "Effect": "Allow",
            "Action": "s3:DeleteObject",
            "Resource": f"arn:aws:s3:::{bucket}/config-*.tar.gz",
        }
    ]


def test_the_first_users_destroy_is_not_blocked_by_the_policies_joining_users_added():
    first = run_program()
    assert first.named("annex-us-east-1-functions-lease-role").inputs["forceDetachPolicies"] is True


def test_the_joining_user_admits_their_machine_once_and_repeats_no_rule_the_group_has():
    holds = first_users_setup(
        security_group_rules={
            "sgr-first-condor": rule("0.0.0.0/0", 9618, FIRST),
            "sgr-first-ssh": rule("203.0.113.7/32", 22, FIRST),
            # This stack's own rule from its last up stays this stack's.
            "sgr-ours": rule("198.51.100.7/32", 9618, THIS_STACK),
        }
    )
    config = {
        **JOIN,
        "condor-annex:condorIngressCidrs": json.dumps(["0.0.0.0/0", "198.51.100.7/32"]),
        "condor-annex:sshIngressCidrs": json.dumps(["203.0.113.7/32", "198.51.100.7/32"]),
    }
    program = run_program(config, account={"us-east-1": holds})
    made = {(r.inputs["fromPort"], r.inputs["cidrIpv4"]) for r in program.of_type(INGRESS)}
    assert made == {(9618, "198.51.100.7/32"), (22, "198.51.100.7/32")}
    for each in program.of_type(INGRESS):
        assert each.inputs["securityGroupId"] == holds.security_group_id
        assert each.inputs["tags"]["pulumi-stack"] == "test"


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
        f"annex-us-east-1-lease-{RegionHolds().lease_role}",
        "annex-us-east-1-sg-condor-203.0.113.7-32",
        "annex-key-pair-us-east-1",
        "annex-user-us-east-1-attachment",
    ]
    assert [name for name in own if name not in waited] == []
