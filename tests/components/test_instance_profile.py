import json
import re

import pytest

from components.contract import BOOT_SCRIPT_BUCKET_REGEX
from tests.harness import Program, policy, run_program, statements_by_sid


@pytest.fixture(scope="module")
def program() -> Program:
    return run_program()


def test_role_trusts_ec2_only(program: Program):
    trust = json.loads(program.named("annex-us-east-1-instance-role").inputs["assumeRolePolicy"])
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "ec2.amazonaws.com"}]


def test_boot_script_finds_the_bucket_in_the_role_policy(program: Program):
    """The annex image's boot script regex-matches the resource string; it must stay that shape."""
    (statement,) = policy(program.named("annex-us-east-1-instance-config-download"))["Statement"]
    bucket = program.named("annex-us-east-1-config").outputs["bucket"]
    assert statement["Action"] == "s3:GetObject"
    assert isinstance(statement["Resource"], str), "the boot script reads a single resource string"
    match = re.match(BOOT_SCRIPT_BUCKET_REGEX, statement["Resource"])
    assert match and statement["Resource"] == f"arn:aws:s3:::{bucket}/config-*.tar.gz"


def test_introspection_policy_covers_the_boot_script(program: Program):
    statements = statements_by_sid(policy(program.named("annex-us-east-1-instance-introspection")))
    actions = set()
    for statement in statements.values():
        actions |= set([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    assert actions == {
        "iam:GetRolePolicy",
        "iam:GetInstanceProfile",
        "iam:GetPolicy",
        "iam:GetPolicyVersion",
        "iam:ListAttachedRolePolicies",
        "iam:ListRolePolicies",
        "ec2:DescribeInstances",
        "ec2:DescribeSpotFleetRequests",
    }
    role_arn = program.named("annex-us-east-1-instance-role").outputs["arn"]
    profile_arn = program.named("annex-us-east-1-instance-profile").outputs["arn"]
    assert statements["ReadOwnRole"]["Resource"] == [role_arn, profile_arn]


def test_profile_path(program: Program):
    profile = program.named("annex-us-east-1-instance-profile")
    assert profile.inputs["path"] == "/"
    assert profile.inputs["role"] == program.named("annex-us-east-1-instance-role").outputs["name"]
