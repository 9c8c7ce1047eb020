"""The program held to AWS's documented limits, which neither the mocks nor moto enforce.

Each limit is cited with its value and where AWS documents it. Every check runs for one region and
for the most regions the program accepts (settings.MAX_REGIONS), with the longest region names.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from components.settings import MAX_REGIONS
from tests.harness import JOIN, Program, Registration, first_users_setup, run_program

# Long names first: a name limit is reached by the longest region name.
LONGEST_REGIONS = [
    "ap-southeast-4",
    "ap-northeast-3",
    "ap-southeast-2",
    "ap-northeast-1",
    "ca-central-1",
    "me-central-1",
    "il-central-1",
    "mx-central-1",
    "eu-central-2",
    "sa-east-1",
]
assert len(LONGEST_REGIONS) == MAX_REGIONS
# It stands twice in each region's managed policy and once in each lease role's.
LONGEST_ANNEX_NAME_PREFIX = {"condor-annex:annexNamePrefix": "p" * 20}


@pytest.fixture(scope="module", params=[1, MAX_REGIONS], ids=["one-region", f"{MAX_REGIONS}-regions"])
def program(request: pytest.FixtureRequest) -> Program:
    return run_program(
        {"condor-annex:regions": json.dumps(LONGEST_REGIONS[: request.param]), **LONGEST_ANNEX_NAME_PREFIX}
    )


def test_more_regions_than_the_limits_allow_are_refused():
    from components.settings import ConfigError

    with pytest.raises(ConfigError, match=f"at most {MAX_REGIONS} regions"):
        run_program({"condor-annex:regions": json.dumps([*LONGEST_REGIONS, "us-west-1"])})


def iam_size(document: str) -> int:
    """A policy's size as IAM counts it: "IAM doesn't count white space" (IAM quotas page); spaces
    inside strings are kept, which can only overcount."""
    return len(json.dumps(json.loads(document), separators=(",", ":")))


def of_type(program: Program, type_: str) -> list[Registration]:
    found = program.of_type(type_)
    assert found, f"the program registers no {type_}: the limit below would check nothing"
    return found


# IAM and AWS STS quotas (docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html).
USER_INLINE_POLICIES_CHARACTERS = 2_048  # "User policy size": all of a user's inline policies together
ROLE_INLINE_POLICIES_CHARACTERS = 10_240  # "Role policy size": all of a role's inline policies together
MANAGED_POLICY_CHARACTERS = 6_144  # "Managed policy size"
ROLE_TRUST_POLICY_CHARACTERS = 2_048  # "Role trust policy length" (default)
MANAGED_POLICIES_PER_USER = 10  # "Managed policies attached to an IAM user" (default)


def test_a_users_inline_policies_fit_together(program: Program):
    by_user: dict[str, int] = defaultdict(int)
    for policy in of_type(program, "aws:iam/userPolicy:UserPolicy"):
        by_user[policy.inputs["user"]] += iam_size(policy.inputs["policy"])
    assert max(by_user.values()) <= USER_INLINE_POLICIES_CHARACTERS, dict(by_user)


def test_a_roles_inline_policies_fit_together(program: Program):
    by_role: dict[str, int] = defaultdict(int)
    for policy in of_type(program, "aws:iam/rolePolicy:RolePolicy"):
        by_role[policy.inputs["role"]] += iam_size(policy.inputs["policy"])
    assert max(by_role.values()) <= ROLE_INLINE_POLICIES_CHARACTERS, dict(by_role)


def test_managed_policies_fit(program: Program):
    for policy in of_type(program, "aws:iam/policy:Policy"):
        assert iam_size(policy.inputs["policy"]) <= MANAGED_POLICY_CHARACTERS, policy.name
        assert len(policy.inputs["description"]) <= 1_000  # CreatePolicy: Description, 1,000 characters


def test_trust_policies_fit(program: Program):
    for role in of_type(program, "aws:iam/role:Role"):
        assert iam_size(role.inputs["assumeRolePolicy"]) <= ROLE_TRUST_POLICY_CHARACTERS, role.name


def test_no_user_has_more_managed_policies_than_iam_attaches(program: Program):
    attached: dict[str, int] = defaultdict(int)
    for attachment in of_type(program, "aws:iam/userPolicyAttachment:UserPolicyAttachment"):
        attached[attachment.inputs["user"]] += 1
    assert max(attached.values()) <= MANAGED_POLICIES_PER_USER, dict(attached)


def _name_rule(maximum: int, characters: str, minimum: int = 1) -> Callable[[str], bool]:
    pattern = re.compile(characters)
    return lambda name: minimum <= len(name) <= maximum and pattern.fullmatch(name) is not None


# (resource type, output holding the name AWS sees, rule, where AWS documents it)
NAME_RULES = [
    # IAM API reference: CreateUser/CreateRole UserName/RoleName 1-64 of [\w+=,.@-]; CreatePolicy
    # PolicyName 1-128; CreateInstanceProfile InstanceProfileName 1-128; PutUserPolicy/PutRolePolicy
    # PolicyName 1-128.
    ("aws:iam/user:User", "name", _name_rule(64, r"[\w+=,.@-]+")),
    ("aws:iam/role:Role", "name", _name_rule(64, r"[\w+=,.@-]+")),
    ("aws:iam/policy:Policy", "name", _name_rule(128, r"[\w+=,.@-]+")),
    ("aws:iam/instanceProfile:InstanceProfile", "name", _name_rule(128, r"[\w+=,.@-]+")),
    # Lambda CreateFunction: FunctionName up to 64 of [a-zA-Z0-9-_].
    ("aws:lambda/function:Function", "name", _name_rule(64, r"[A-Za-z0-9_-]+")),
    # S3 general purpose bucket naming rules: 3-63 of lower-case letters, digits, dots and
    # hyphens, beginning and ending with a letter or digit.
    ("aws:s3/bucket:Bucket", "bucket", _name_rule(63, r"[a-z0-9][a-z0-9.-]*[a-z0-9]", minimum=3)),
    # CloudWatch Logs CreateLogGroup: logGroupName 1-512 of [\.\-_/#A-Za-z0-9].
    ("aws:cloudwatch/logGroup:LogGroup", "name", _name_rule(512, r"[.\-_/#A-Za-z0-9]+")),
    # CloudFormation CreateStack: StackName up to 128, [a-zA-Z][-a-zA-Z0-9]*.
    ("aws:cloudformation/stack:Stack", "name", _name_rule(128, r"[A-Za-z][-A-Za-z0-9]*")),
    # EC2 ImportKeyPair: KeyName up to 255 ASCII characters.
    ("aws:ec2/keyPair:KeyPair", "keyName", _name_rule(255, r"[\x20-\x7e]+")),
    # EC2 CreateSecurityGroup (VPC): GroupName up to 255 of a-zA-Z0-9 spaces ._-:/()#,@[]+=&;{}!$*,
    # and not starting with sg-.
    (
        "aws:ec2/securityGroup:SecurityGroup",
        "name",
        _name_rule(255, r"(?!sg-)[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]+"),
    ),
]


@pytest.mark.parametrize("type_, key, rule", NAME_RULES, ids=[rule[0] for rule in NAME_RULES])
def test_names_follow_aws_rules(program: Program, type_: str, key: str, rule: Callable[[str], bool]):
    assert_names_follow(of_type(program, type_), key, rule)


def assert_names_follow(registrations: list[Registration], key: str, rule: Callable[[str], bool]) -> None:
    for registration in registrations:
        # A name the program leaves to Pulumi is its resource name and 8 more characters ("-" and 7
        # random ones), as the mocks and Pulumi's autonaming make it.
        name = registration.outputs.get(key) or registration.inputs.get(key) or f"{registration.name}-xxxxxxx"
        assert rule(name), f"{registration.type} {registration.name}: AWS refuses the name {name!r}"


# EC2 CreateSecurityGroup GroupDescription and the rules' Description: up to 255 of the same characters.
SECURITY_GROUP_TEXT = re.compile(r"[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]{0,255}")


def test_security_group_descriptions_follow_aws_rules(program: Program):
    texts = [g.inputs["description"] for g in of_type(program, "aws:ec2/securityGroup:SecurityGroup")]
    texts += [
        r.inputs["description"] for r in of_type(program, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    ]
    texts += [
        r.inputs["description"] for r in of_type(program, "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    ]
    for text in texts:
        assert SECURITY_GROUP_TEXT.fullmatch(text), text


# Tagging AWS resources (docs.aws.amazon.com/tag-editor/latest/userguide/tagging.html): at most 50
# tags, keys 1-128 and values 0-256 characters, no key starting with aws:. IAM and CloudFormation
# stacks allow 50 tags too.
MAX_TAGS, MAX_TAG_KEY, MAX_TAG_VALUE = 50, 128, 256


def test_tags_fit(program: Program):
    tagged = [r for r in program.registrations if r.type.startswith("aws:") and r.inputs.get("tags")]
    assert tagged, "no tagged resource: the limit below would check nothing"
    for registration in tagged:
        tags = registration.inputs["tags"]
        assert len(tags) <= MAX_TAGS, registration.name
        for key, value in tags.items():
            assert 1 <= len(key) <= MAX_TAG_KEY and not key.lower().startswith("aws:"), (registration.name, key)
            assert len(value) <= MAX_TAG_VALUE, (registration.name, key)


# Lambda quotas (docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html): function
# timeout 900 s; memory 128-10,240 MB (128 when unset); environment variables 4 KB in all;
# deployment package 50 MB zipped for a direct upload.
LAMBDA_TIMEOUT, LAMBDA_MEMORY, LAMBDA_ENVIRONMENT, LAMBDA_PACKAGE = 900, (128, 10_240), 4_096, 50 << 20


def test_lambda_functions_fit(program: Program):
    for function in of_type(program, "aws:lambda/function:Function"):
        inputs = function.inputs
        assert 1 <= inputs["timeout"] <= LAMBDA_TIMEOUT, function.name
        assert LAMBDA_MEMORY[0] <= inputs.get("memorySize", 128) <= LAMBDA_MEMORY[1], function.name
        variables = (inputs.get("environment") or {}).get("variables", {})
        assert sum(len(k) + len(v) for k, v in variables.items()) <= LAMBDA_ENVIRONMENT, function.name
    from components.lambdas import LAMBDA_SOURCE

    assert sum(path.stat().st_size for path in Path(LAMBDA_SOURCE).glob("*.py")) < LAMBDA_PACKAGE


# CloudFormation quotas (docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html):
# a template body of 51,200 bytes in the request, 200 parameters, 200 outputs.
TEMPLATE_BODY, TEMPLATE_PARAMETERS, TEMPLATE_OUTPUTS = 51_200, 200, 200


def test_marker_stacks_fit(program: Program):
    for stack in of_type(program, "aws:cloudformation/stack:Stack"):
        body = stack.inputs["templateBody"]
        template = json.loads(body)
        assert len(body.encode()) <= TEMPLATE_BODY
        assert len(template["Parameters"]) <= TEMPLATE_PARAMETERS and len(template["Outputs"]) <= TEMPLATE_OUTPUTS


# A stack that joins another: the most regions, and the longest stack name Pulumi allows (100).
@pytest.fixture(scope="module")
def joining() -> Program:
    config = {**JOIN, "condor-annex:regions": json.dumps(LONGEST_REGIONS), **LONGEST_ANNEX_NAME_PREFIX}
    return run_program(config, account={region: first_users_setup() for region in LONGEST_REGIONS}, stack="s" * 100)


# What every user's stack, the first and each joining one, draws on, at AWS's default quotas: per
# account, IAM's 1,000 roles, 1,000 instance profiles, 1,500 customer managed policies and 5,000
# users (IAM quotas page) and S3's 10,000 general purpose buckets (S3 user guide, "Bucket quotas");
# per region, 2,500 VPC security groups (Amazon VPC quotas). Lambda functions and log groups have no
# count quota near these. Each user has their own group, so a group's 60 inbound rules bind no one.
ACCOUNT_QUOTAS = {
    "aws:iam/role:Role": 1_000,
    "aws:iam/instanceProfile:InstanceProfile": 1_000,
    "aws:iam/policy:Policy": 1_500,
    "aws:iam/user:User": 5_000,
    "aws:s3/bucket:Bucket": 10_000,
}
REGION_QUOTAS = {"aws:ec2/securityGroup:SecurityGroup": 2_500}
# The README's figures, by regions listed, in an account holding nothing else: IAM roles bind first.
JOINING_USERS = {1: 248, MAX_REGIONS: 23}


@pytest.mark.parametrize("regions", sorted(JOINING_USERS))
def test_the_joining_users_the_readme_promises_fit_the_accounts_quotas(regions: int):
    names = json.dumps(LONGEST_REGIONS[:regions])
    first = run_program({"condor-annex:regions": names})
    joiner = run_program(
        {**JOIN, "condor-annex:regions": names}, account={region: first_users_setup() for region in LONGEST_REGIONS}
    )
    room = {
        type_: (quota - len(of_type(first, type_))) // len(of_type(joiner, type_))
        for type_, quota in ACCOUNT_QUOTAS.items()
    }
    room |= {
        type_: (quota - len(of_type(first, type_)) // regions) // (len(of_type(joiner, type_)) // regions)
        for type_, quota in REGION_QUOTAS.items()
    }
    binding = min(room, key=room.__getitem__)
    assert (binding, room[binding]) == ("aws:iam/role:Role", JOINING_USERS[regions]), room


@pytest.mark.parametrize("type_, key, rule", NAME_RULES, ids=[rule[0] for rule in NAME_RULES])
def test_a_joining_stacks_names_follow_aws_rules(joining: Program, type_: str, key: str, rule: Callable[[str], bool]):
    assert_names_follow(joining.of_type(type_), key, rule)
    if type_ in ("aws:ec2/keyPair:KeyPair", "aws:s3/bucket:Bucket", "aws:iam/role:Role"):
        assert joining.of_type(type_), f"a joining stack registers no {type_}: the rule above checked nothing"


# EC2 Image Builder API reference: CreateComponent `data` ("InlineComponentData"), 1 to 16,000
# characters; AmiDistributionConfiguration `name`, 1 to 127, ^[-_A-Za-z0-9{][-_A-Za-z0-9\s:{}\.]+[-_A-Za-z0-9}]$,
# and `amiTags`, at most 50, keys 1 to 128 not starting with `aws:`, values at most 256.
IMAGE_COMPONENT_DATA = 16_000
AMI_NAME = re.compile(r"[-_A-Za-z0-9{][-_A-Za-z0-9\s:{}.]+[-_A-Za-z0-9}]")


@pytest.mark.parametrize("version", ["25.0.13", "24.0.23", "10.5.1"])
def test_the_annex_image_build_fits_image_builder(version: str):
    program = run_program({"condor-annex:condorVersion": version, "condor-annex:annexImageTarballSha256": "0" * 64})
    (component,) = of_type(program, "aws:imagebuilder/component:Component")
    assert 0 < len(component.inputs["data"]) <= IMAGE_COMPONENT_DATA, len(component.inputs["data"])
    (distribution,) = of_type(program, "aws:imagebuilder/distributionConfiguration:DistributionConfiguration")
    ami = distribution.inputs["distributions"][0]["amiDistributionConfiguration"]
    assert len(ami["name"]) <= 127 and AMI_NAME.fullmatch(ami["name"]), ami["name"]
    assert len(ami["amiTags"]) <= 50
    for key, value in ami["amiTags"].items():
        assert 1 <= len(key) <= 128 and not key.startswith("aws:") and len(value) <= 256
