"""Two users in one account, one joining the other's setup: neither reaches the other's tarballs,
neither with their key, nor from their annexes, nor through their lease functions.

Each configuration tarball carries its user's pool password. The policies are the ones the program
registers under mocks for a first user's stack and for a second stack that joins it; moto's IAM
evaluator, with enforcement on, decides every S3 call below (moto authorizes S3 calls against the
object's own ARN, so resource-scoped statements are really evaluated). Role sessions come from
STS AssumeRole on roles that carry the registered policies; their trust policies name the test's
caller instead of ec2.amazonaws.com or lambda.amazonaws.com, which moto cannot stand in for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count

from tests.harness import ACCOUNT_ID, JOIN, Program, first_users_setup, run_program

REGION = "us-east-1"
CALLER = f"arn:aws:iam::{ACCOUNT_ID}:user/tester"


@dataclass
class Registered:
    bucket: str
    user_policy: str
    instance_policy: str
    lease_policy: str


def _registered(program: Program) -> Registered:
    return Registered(
        bucket=program.named(f"annex-{REGION}-config").outputs["bucket"],
        user_policy=program.named(f"annex-user-{REGION}").inputs["policy"],
        instance_policy=program.named(f"annex-{REGION}-instance-config-download").inputs["policy"],
        lease_policy=program.named(f"annex-{REGION}-functions-lease-policy").inputs["policy"],
    )


@pytest.fixture(scope="module")
def registered() -> dict[str, Registered]:
    first = run_program(stack="first")
    second = run_program(JOIN, stack="second", account={REGION: first_users_setup()})
    return {"first": _registered(first), "second": _registered(second)}


def _session(credentials: dict[str, str]) -> boto3.Session:
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials.get("SessionToken"),
        region_name=REGION,
    )


def _user(iam: Any, name: str, policy: str) -> boto3.Session:
    iam.create_user(UserName=name)
    managed = iam.create_policy(PolicyName=name, PolicyDocument=policy)["Policy"]["Arn"]
    iam.attach_user_policy(UserName=name, PolicyArn=managed)
    return _session(iam.create_access_key(UserName=name)["AccessKey"])


def _role(iam: Any, name: str, policies: list[str]) -> str:
    trust = {"Effect": "Allow", "Principal": {"AWS": CALLER}, "Action": "sts:AssumeRole"}
    document = json.dumps({"Version": "2012-10-17", "Statement": [trust]})
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=document)["Role"]["Arn"]
    for number, policy in enumerate(policies):
        iam.put_role_policy(RoleName=name, PolicyName=f"{name}-{number}", PolicyDocument=policy)
    return arn


@pytest.fixture
def sessions(registered: dict[str, Registered]) -> Iterator[dict[str, Callable[[], boto3.Session]]]:
    """The annex users, the annex instance roles, each user's lease role and an administrator, each
    tarball already uploaded by the deployer."""
    with mock_aws():
        iam = boto3.client("iam", region_name=REGION)
        s3 = boto3.client("s3", region_name=REGION)
        for user in registered.values():
            s3.create_bucket(Bucket=user.bucket)
            s3.put_object(Bucket=user.bucket, Key="config-a1.tar.gz", Body=b"pool password inside")
        everything = json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        )
        tester = _user(iam, "tester", everything)
        roles = {
            "first instance": _role(iam, "first-instance", [registered["first"].instance_policy]),
            "second instance": _role(iam, "second-instance", [registered["second"].instance_policy]),
            "first lease": _role(iam, "first-lease", [registered["first"].lease_policy]),
            "second lease": _role(iam, "second-lease", [registered["second"].lease_policy]),
        }
        users = {name: _user(iam, name, registered[name].user_policy) for name in ("first", "second")}
        found: dict[str, Callable[[], boto3.Session]] = {
            "first user": lambda: users["first"],
            "second user": lambda: users["second"],
            "administrator": lambda: tester,
        }
        for name, arn in roles.items():

            def assumed(arn: str = arn) -> boto3.Session:
                sts = tester.client("sts", region_name=REGION)
                return _session(sts.assume_role(RoleArn=arn, RoleSessionName="test")["Credentials"])

            found[name] = assumed
        yield found


def _call(session: boto3.Session, action: str, bucket: str) -> str:
    s3 = session.client("s3", region_name=REGION)
    calls = {
        "put": lambda: s3.put_object(Bucket=bucket, Key="config-a2.tar.gz", Body=b"x"),
        "overwrite": lambda: s3.put_object(Bucket=bucket, Key="config-a1.tar.gz", Body=b"x"),
        "get": lambda: s3.get_object(Bucket=bucket, Key="config-a1.tar.gz"),
        "delete": lambda: s3.delete_object(Bucket=bucket, Key="config-a1.tar.gz"),
    }
    try:
        calls[action]()
        return "allowed"
    except ClientError as error:
        return "denied" if error.response["Error"]["Code"] == "AccessDenied" else f"failed: {error}"


# (who, action, whose tarballs) -> outcome: what each party needs, and nothing of the other user's.
EXPECTED = {
    ("first user", "put", "first"): "allowed",
    ("first user", "overwrite", "second"): "denied",
    ("first user", "put", "second"): "denied",
    ("first user", "get", "second"): "denied",
    ("first user", "delete", "second"): "denied",
    ("second user", "put", "second"): "allowed",
    ("second user", "overwrite", "first"): "denied",
    ("second user", "put", "first"): "denied",
    ("second user", "get", "first"): "denied",
    ("second user", "delete", "first"): "denied",
    ("first instance", "get", "first"): "allowed",
    ("first instance", "get", "second"): "denied",
    ("first instance", "overwrite", "second"): "denied",
    ("second instance", "get", "second"): "allowed",
    ("second instance", "get", "first"): "denied",
    ("second instance", "overwrite", "first"): "denied",
    ("first lease", "get", "first"): "denied",
    ("first lease", "delete", "first"): "allowed",
    ("first lease", "delete", "second"): "denied",
    ("second lease", "get", "second"): "denied",
    ("second lease", "delete", "second"): "allowed",
    ("second lease", "delete", "first"): "denied",
}


@set_initial_no_auth_action_count(0)
def _outcomes(
    sessions: dict[str, Callable[[], boto3.Session]], registered: dict[str, Registered], who_is: str | None
) -> dict[tuple[str, str, str], str]:
    """Each call of EXPECTED as its party (or all as `who_is`), each with the tarball in place."""
    outcomes = {}
    administrator = sessions["administrator"]().client("s3", region_name=REGION)
    for who, action, whose in EXPECTED:
        bucket = registered[whose].bucket
        administrator.put_object(Bucket=bucket, Key="config-a1.tar.gz", Body=b"pool password inside")
        outcomes[who, action, whose] = _call(sessions[who_is or who](), action, bucket)
    return outcomes


def test_neither_user_nor_their_annexes_reach_the_other_users_tarballs(
    sessions: dict[str, Callable[[], boto3.Session]], registered: dict[str, Registered]
):
    assert registered["first"].bucket != registered["second"].bucket
    assert _outcomes(sessions, registered, None) == EXPECTED


def test_the_denials_are_the_policies_not_moto(
    sessions: dict[str, Callable[[], boto3.Session]], registered: dict[str, Registered]
):
    outcomes = _outcomes(sessions, registered, "administrator")
    assert set(outcomes.values()) == {"allowed"}, outcomes
