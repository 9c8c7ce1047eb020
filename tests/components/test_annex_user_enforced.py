"""The annex user's policy, enforced by moto's IAM evaluator against real boto3 calls.

The policy documents are the ones the program registers under mocks (the user's inline policy and
each region's managed policy, attached to the user), with moto's ids substituted for the mocks' ids.
The deployer (moto's root credentials) builds what a `pulumi up` would have built; then, with IAM
enforcement on and only the annex user's access key, every call condor_annex makes must succeed and
every call outside its job must be denied.

What moto does not do, and what tests/moto_iam.py does about it, is said there. Here: moto treats
the `aws:RequestedRegion` conditions on each region's ReportAnnexStatus and the
`iam:PassedToService` conditions on the PassRole statements as met; those statements are covered by
assertions on the document.
- moto does not make RunInstances check `iam:PassRole`; that check is asked of moto's evaluator
  directly, as AWS asks it while launching.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count
from moto.iam.access_control import IAMPolicy, PermissionResult

from components.annex_user import SPOT_FLEET_ROLE
from components.contract import (
    ANNEX_TAG,
    BUCKET_STACK,
    CONNECTIVITY_FUNCTION_NAME,
    INSTANCE_PROFILE_STACK,
    KEY_PAIR_NAME,
    LAMBDA_STACK,
    SECURITY_GROUP_STACK,
)
from tests.harness import ACCOUNT_ID, run_program
from tests.moto_iam import enforce_per_resource

# The stack's two regions; the first is where the denied calls are tried, a third is never allowed.
REGIONS = ("us-east-1", "eu-west-2")
REGION = REGIONS[0]
OTHER_REGION = "us-west-2"
ANNEX = "annex-a1"
WAIT_HANDLE_TEMPLATE = json.dumps({"Resources": {"Marker": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}})


@pytest.fixture
def resource_level_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    enforce_per_resource(monkeypatch)


@dataclass
class Deployed:
    """What `pulumi up` left in the account, as moto holds it."""

    # The inline policy under "inline", each region's managed policy under its region.
    documents: dict[str, dict[str, Any]]
    annex_user: boto3.Session
    other_bucket: str
    other_security_group: str
    admin_role_arn: str
    # Per region:
    buckets: dict[str, str]
    security_groups: dict[str, str]
    instance_profile_arns: dict[str, str]
    instance_role_arns: dict[str, str]
    images: dict[str, str]
    function_arns: dict[str, dict[str, str]]

    @property
    def document(self) -> dict[str, Any]:
        """Every statement the user holds, as one document."""
        statements = [s for document in self.documents.values() for s in document["Statement"]]
        return {"Version": "2012-10-17", "Statement": statements}

    @property
    def bucket(self) -> str:
        return self.buckets[REGION]

    @property
    def security_group(self) -> str:
        return self.security_groups[REGION]

    @property
    def instance_role_arn(self) -> str:
        return self.instance_role_arns[REGION]


@pytest.fixture(scope="module")
def registered_policy() -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    program = run_program({"condor-annex:regions": json.dumps(REGIONS)})
    documents = {"inline": program.named("annex-user-policy").inputs["policy"]}
    documents |= {region: program.named(f"annex-user-{region}").inputs["policy"] for region in REGIONS}
    return documents, program.outputs["byRegion"].value


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


def _deploy(registered: dict[str, str], by_region: dict[str, dict[str, str]]) -> Deployed:
    """Build, as the deployer, the account a `pulumi up` leaves, plus things the user must not touch."""
    iam = boto3.client("iam", region_name=REGION)
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
    )
    iam.create_role(RoleName=SPOT_FLEET_ROLE, AssumeRolePolicyDocument=trust)
    admin_role_arn = iam.create_role(RoleName="admin", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="someone-elses-bucket")

    deployed: dict[str, dict[str, Any]] = {
        "buckets": {},
        "security_groups": {},
        "instance_profile_arns": {},
        "instance_role_arns": {},
        "images": {},
        "function_arns": {},
    }
    substitutions: dict[str, str] = {}
    other_group = ""
    for region in (*REGIONS, OTHER_REGION):
        ec2 = boto3.client("ec2", region_name=region)
        outputs = by_region.get(region, by_region[REGION])
        role_arn = iam.create_role(RoleName=f"annex-instance-{region}", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        profile = iam.create_instance_profile(InstanceProfileName=f"annex-instance-{region}")["InstanceProfile"]
        iam.add_role_to_instance_profile(
            InstanceProfileName=f"annex-instance-{region}", RoleName=f"annex-instance-{region}"
        )
        bucket = f"annex-config-{region}"
        s3 = boto3.client("s3", region_name=region)
        s3.create_bucket(
            Bucket=bucket,
            **({} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}),
        )
        vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
        group = ec2.create_security_group(GroupName="annex", Description="annex", VpcId=vpc)["GroupId"]
        if region == REGION:
            other_group = ec2.create_security_group(GroupName="wide-open", Description="other", VpcId=vpc)["GroupId"]
            ec2.create_key_pair(KeyName="someone-elses-key")
        ec2.create_key_pair(KeyName=KEY_PAIR_NAME)
        functions = boto3.client("lambda", region_name=region)
        function_arns = {}
        for output in ("odiLeaseFunctionArn", "sfrLeaseFunctionArn", "connectivityFunctionArn"):
            created = functions.create_function(
                FunctionName=outputs[output].rsplit(":", 1)[1],
                Runtime="python3.13",
                Role=role_arn,
                Handler="handler.handler",
                Code={"ZipFile": _zip()},
            )
            function_arns[output] = created["FunctionArn"]
        cloudformation = boto3.client("cloudformation", region_name=region)
        for stack in (BUCKET_STACK, LAMBDA_STACK, INSTANCE_PROFILE_STACK, SECURITY_GROUP_STACK, "someone-elses-stack"):
            cloudformation.create_stack(StackName=stack, TemplateBody=WAIT_HANDLE_TEMPLATE)
        for kind, value in (
            ("buckets", bucket),
            ("security_groups", group),
            ("instance_profile_arns", profile["Arn"]),
            ("instance_role_arns", role_arn),
            ("images", ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]),
            ("function_arns", function_arns),
        ):
            deployed[kind][region] = value
        if region in REGIONS:
            substitutions |= {
                outputs["securityGroupId"]: group,
                outputs["instanceRoleArn"]: role_arn,
                outputs["bucketName"]: bucket,
                **{outputs[name]: arn for name, arn in function_arns.items()},
            }

    substituted = dict(registered)
    for mock_id, moto_id in substitutions.items():
        assert any(mock_id in document for document in substituted.values()), f"no policy names {mock_id}"
        substituted = {name: document.replace(mock_id, moto_id) for name, document in substituted.items()}

    iam.create_user(UserName="condor-annex")
    iam.put_user_policy(UserName="condor-annex", PolicyName="annex", PolicyDocument=substituted["inline"])
    for region in REGIONS:
        managed = iam.create_policy(PolicyName=f"annex-{region}", PolicyDocument=substituted[region])
        iam.attach_user_policy(UserName="condor-annex", PolicyArn=managed["Policy"]["Arn"])
    key = iam.create_access_key(UserName="condor-annex")["AccessKey"]
    session = boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    return Deployed(
        documents={name: json.loads(document) for name, document in substituted.items()},
        annex_user=session,
        other_bucket="someone-elses-bucket",
        other_security_group=other_group,
        admin_role_arn=admin_role_arn,
        **deployed,
    )


@pytest.fixture
def account(
    registered_policy: tuple[dict[str, str], dict[str, dict[str, str]]], resource_level_moto: None
) -> Iterator[Deployed]:
    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield _deploy(*registered_policy)


def _launch(deployed: Deployed, region: str = REGION, group: str = "", key: str = KEY_PAIR_NAME) -> Callable[[], Any]:
    ec2 = deployed.annex_user.client("ec2", region_name=region)
    return lambda: ec2.run_instances(
        ImageId=deployed.images[region],
        MinCount=1,
        MaxCount=1,
        InstanceType="m5.large",
        ClientToken=f"{ANNEX}_0b6f1c",
        KeyName=key,
        SecurityGroupIds=[group or deployed.security_groups[region]],
        IamInstanceProfile={"Arn": deployed.instance_profile_arns[region]},
        InstanceInitiatedShutdownBehavior="terminate",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": ANNEX_TAG, "Value": ANNEX}]}],
    )


def _condor_annex_calls(deployed: Deployed, region: str) -> list[tuple[str, Callable[[], Any]]]:
    """Every call condor_annex makes in one region for -check-setup, an ODI annex (its tag comes with
    RunInstances), an SFR annex, -status and a rollback."""
    user = deployed.annex_user
    functions = user.client("lambda", region_name=region)
    events = user.client("events", region_name=region)
    ec2 = user.client("ec2", region_name=region)
    bucket = deployed.buckets[region]
    function_arns = deployed.function_arns[region]
    rule_input = json.dumps({"AnnexID": ANNEX, "S3BucketName": bucket, "LeaseExpiration": 1_900_000_000})

    def run_instances() -> None:
        _launch(deployed, region)()

    calls: list[tuple[str, Callable[[], Any]]] = [
        *(
            (
                f"cloudformation:DescribeStacks {stack}",
                lambda stack=stack: user.client("cloudformation", region_name=region).describe_stacks(StackName=stack),
            )
            for stack in (BUCKET_STACK, LAMBDA_STACK, INSTANCE_PROFILE_STACK, SECURITY_GROUP_STACK)
        ),
        (
            "lambda:InvokeFunction connectivity",
            lambda: functions.invoke(
                FunctionName=CONNECTIVITY_FUNCTION_NAME,
                Payload=json.dumps({"condor_host": "203.0.113.7", "condor_port": 9618, "timeout": 5}),
            ),
        ),
        (
            "lambda:GetFunction odiLease",
            lambda: functions.get_function(FunctionName=function_arns["odiLeaseFunctionArn"]),
        ),
        (
            "lambda:GetFunction sfrLease",
            lambda: functions.get_function(FunctionName=function_arns["sfrLeaseFunctionArn"]),
        ),
        (
            "s3:PutObject config tarball",
            lambda: user.client("s3", region_name=region).put_object(
                Bucket=bucket, Key=f"config-{ANNEX}.tar.gz", Body=b"tarball"
            ),
        ),
        ("events:PutRule", lambda: events.put_rule(Name=ANNEX, ScheduleExpression="rate(5 minutes)")),
        (
            "events:PutTargets",
            lambda: events.put_targets(
                Rule=ANNEX,
                Targets=[{"Id": ANNEX, "Arn": function_arns["odiLeaseFunctionArn"], "Input": rule_input}],
            ),
        ),
        ("ec2:RunInstances", run_instances),
        (
            "ec2:RequestSpotFleet",
            lambda: ec2.request_spot_fleet(
                SpotFleetRequestConfig={
                    "ClientToken": f"{ANNEX}_9d2e7a",
                    "IamFleetRole": f"arn:aws:iam::{ACCOUNT_ID}:role/{SPOT_FLEET_ROLE}",
                    "TargetCapacity": 1,
                    "AllocationStrategy": "lowestPrice",
                    "LaunchSpecifications": [{"ImageId": deployed.images[region], "InstanceType": "m5.large"}],
                }
            ),
        ),
        ("ec2:DescribeInstances", lambda: ec2.describe_instances()),
        ("ec2:DescribeSpotFleetRequests", lambda: ec2.describe_spot_fleet_requests()),
        ("events:RemoveTargets", lambda: events.remove_targets(Rule=ANNEX, Ids=[ANNEX])),
        ("events:DeleteRule", lambda: events.delete_rule(Name=ANNEX)),
    ]
    return [(f"{name} in {region}", call) for name, call in calls]


def _outside_calls(deployed: Deployed) -> list[tuple[str, Callable[[], Any]]]:
    """Calls a leaked annex key must not be able to make."""
    user = deployed.annex_user
    s3 = user.client("s3", region_name=REGION)
    iam = user.client("iam", region_name=REGION)
    functions = user.client("lambda", region_name=REGION)
    ec2 = user.client("ec2", region_name=REGION)
    odi_lease = deployed.function_arns[REGION]["odiLeaseFunctionArn"]
    return [
        (
            "s3:PutObject into another bucket",
            lambda: s3.put_object(Bucket=deployed.other_bucket, Key="config-x.tar.gz", Body=b"x"),
        ),
        (
            "s3:PutObject outside config-*.tar.gz",
            lambda: s3.put_object(Bucket=deployed.bucket, Key="index.html", Body=b"x"),
        ),
        ("s3:GetObject a config tarball", lambda: s3.get_object(Bucket=deployed.bucket, Key=f"config-{ANNEX}.tar.gz")),
        ("s3:ListBucket", lambda: s3.list_objects_v2(Bucket=deployed.bucket)),
        ("s3:DeleteBucket", lambda: s3.delete_bucket(Bucket=deployed.bucket)),
        ("iam:CreateUser", lambda: iam.create_user(UserName="backdoor")),
        ("iam:CreateAccessKey for itself", lambda: iam.create_access_key(UserName="condor-annex")),
        (
            "iam:PutUserPolicy on itself",
            lambda: iam.put_user_policy(
                UserName="condor-annex", PolicyName="more", PolicyDocument=json.dumps(deployed.document)
            ),
        ),
        ("iam:ListRoles", lambda: iam.list_roles()),
        ("lambda:InvokeFunction a lease function", lambda: functions.invoke(FunctionName=odi_lease, Payload=b"{}")),
        (
            "lambda:UpdateFunctionCode",
            lambda: functions.update_function_code(FunctionName=CONNECTIVITY_FUNCTION_NAME, ZipFile=_zip()),
        ),
        ("lambda:DeleteFunction", lambda: functions.delete_function(FunctionName=odi_lease)),
        (
            "lambda:InvokeFunction in another region",
            lambda: user.client("lambda", region_name=OTHER_REGION).invoke(
                FunctionName=CONNECTIVITY_FUNCTION_NAME, Payload=b"{}"
            ),
        ),
        ("ec2:RunInstances with another security group", _launch(deployed, group=deployed.other_security_group)),
        ("ec2:RunInstances with another key pair", _launch(deployed, key="someone-elses-key")),
        ("ec2:RunInstances in another region", _launch(deployed, region=OTHER_REGION)),
        ("ec2:TerminateInstances", lambda: ec2.terminate_instances(InstanceIds=["i-0123456789abcdef0"])),
        (
            "ec2:AuthorizeSecurityGroupIngress",
            lambda: ec2.authorize_security_group_ingress(
                GroupId=deployed.security_group, IpProtocol="tcp", FromPort=22, ToPort=22, CidrIp="0.0.0.0/0"
            ),
        ),
        ("ec2:CreateKeyPair", lambda: ec2.create_key_pair(KeyName="mine")),
        (
            "events:PutRule in another region",
            lambda: user.client("events", region_name=OTHER_REGION).put_rule(
                Name=ANNEX, ScheduleExpression="rate(1 minute)"
            ),
        ),
        (
            "cloudformation:DescribeStacks of another stack",
            lambda: user.client("cloudformation", region_name=REGION).describe_stacks(StackName="someone-elses-stack"),
        ),
        (
            "cloudformation:DeleteStack",
            lambda: user.client("cloudformation", region_name=REGION).delete_stack(StackName=BUCKET_STACK),
        ),
    ]


def _denied(error: ClientError) -> bool:
    """moto's wording differs per service protocol; an access denial is a 403 that says so."""
    text = f"{error.response['Error'].get('Code')} {error.response['Error'].get('Message')}"
    status = error.response["ResponseMetadata"]["HTTPStatusCode"]
    return status == 403 and ("AccessDenied" in text or "UnauthorizedOperation" in text)


def _administrator() -> boto3.Session:
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="administrator")
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName="administrator", PolicyName="all", PolicyDocument=json.dumps(everything))
    key = iam.create_access_key(UserName="administrator")["AccessKey"]
    return boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])


@set_initial_no_auth_action_count(0)
def _outcomes(calls: list[tuple[str, Callable[[], Any]]]) -> dict[str, str]:
    outcomes = {}
    for name, call in calls:
        try:
            call()
            outcomes[name] = "allowed"
        except ClientError as error:
            outcomes[name] = "denied" if _denied(error) else f"failed: {error}"
    return outcomes


def test_every_call_condor_annex_makes_is_allowed_in_each_region(account: Deployed):
    calls = [call for region in REGIONS for call in _condor_annex_calls(account, region)]
    outcomes = _outcomes(calls)
    assert outcomes == {name: "allowed" for name, _ in calls}
    assert len(calls) == 2 * 16


def test_calls_outside_its_job_are_denied(account: Deployed):
    calls = _outside_calls(account)
    outcomes = _outcomes(calls)
    assert outcomes == {name: "denied" for name, _ in calls}
    assert len(calls) == 22, "the README promises 22 denied calls"


def test_denials_are_the_policy_not_moto(account: Deployed):
    """The same outside calls made as the deployer get past authorization: the denials above are the policy's."""
    admin = Deployed(**{**account.__dict__, "annex_user": _administrator()})
    outcomes = _outcomes(_outside_calls(admin))
    assert "denied" not in outcomes.values(), outcomes


def test_pass_role_only_for_the_instance_and_spot_fleet_roles(account: Deployed):
    evaluator = IAMPolicy(json.dumps(account.document))

    def may_pass(role_arn: str) -> bool:
        return evaluator.is_action_permitted("iam:PassRole", role_arn) == PermissionResult.PERMITTED

    assert all(may_pass(account.instance_role_arns[region]) for region in REGIONS)
    assert not may_pass(account.instance_role_arns[OTHER_REGION])
    assert may_pass(f"arn:aws:iam::{ACCOUNT_ID}:role/{SPOT_FLEET_ROLE}")
    assert not may_pass(account.admin_role_arn)
    assert not may_pass(f"arn:aws:iam::{ACCOUNT_ID}:role/OrganizationAccountAccessRole")


def test_conditions_moto_cannot_evaluate(account: Deployed):
    """moto treats every Condition as met, so each conditioned statement is checked on the document."""
    conditioned = {
        (name, s["Sid"]): s["Condition"]
        for name, document in account.documents.items()
        for s in document["Statement"]
        if "Condition" in s
    }
    assert conditioned == {
        ("inline", "PassSpotFleetRole"): {"StringEquals": {"iam:PassedToService": "spotfleet.amazonaws.com"}},
        **{
            key: condition
            for region in REGIONS
            for key, condition in (
                ((region, "ReportAnnexStatus"), {"StringEquals": {"aws:RequestedRegion": region}}),
                ((region, "PassInstanceRole"), {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}),
                ((region, "TagAnnexInstances"), {"StringEquals": {"ec2:CreateAction": "RunInstances"}}),
                (
                    (region, "AimRulesAtOwnLeaseFunctions"),
                    {
                        "ForAllValues:ArnEquals": {
                            "events:TargetArn": [
                                account.function_arns[region]["odiLeaseFunctionArn"],
                                account.function_arns[region]["sfrLeaseFunctionArn"],
                            ]
                        }
                    },
                ),
            )
        },
    }
    unconditioned_wildcards = [
        s["Sid"] for s in account.document["Statement"] if s["Resource"] == "*" and "Condition" not in s
    ]
    assert [s["Sid"] for s in account.document["Statement"] if s["Effect"] == "Deny"] == [
        "NoRulesOnOtherBuses" for _ in REGIONS
    ]
    assert unconditioned_wildcards == []


def test_the_enforced_documents_are_the_registered_ones(
    account: Deployed, registered_policy: tuple[dict[str, str], dict[str, dict[str, str]]]
):
    for name, registered in registered_policy[0].items():
        statements = json.loads(registered)["Statement"]
        enforced = account.documents[name]["Statement"]
        assert [s["Sid"] for s in enforced] == [s["Sid"] for s in statements]
        assert [s["Action"] for s in enforced] == [s["Action"] for s in statements]
