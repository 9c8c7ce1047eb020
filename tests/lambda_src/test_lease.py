"""The lease functions against moto: real boto3 calls into the emulator."""

from __future__ import annotations

import json
import logging
import time
import uuid

import boto3
import lease
import pytest
from moto import mock_aws

REGION = "us-east-1"
BUCKET = "annex-config-test"
IMAGE = "ami-12c6146b"  # one of moto's built-in images
PAST = time.time() - 3600
FUTURE = time.time() + 3600


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("S3_BUCKET_NAME", BUCKET)
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield


def start_annex(annex_id: str, count: int, tagged: bool = True) -> list[str]:
    """As condor_annex does: a client token of `<annex>_<uuid>` and the annex-name tag."""
    ec2 = boto3.client("ec2")
    ids = []
    while count > 0:
        batch = min(count, 1000)
        kwargs = {}
        if tagged:
            kwargs["TagSpecifications"] = [
                {"ResourceType": "instance", "Tags": [{"Key": "htcondor:AnnexName", "Value": annex_id}]}
            ]
        reply = ec2.run_instances(
            ImageId=IMAGE, MinCount=batch, MaxCount=batch, ClientToken=f"{annex_id}_{uuid.uuid4()}", **kwargs
        )
        ids += [instance["InstanceId"] for instance in reply["Instances"]]
        count -= batch
    s3 = boto3.client("s3")
    s3.put_object(Bucket=BUCKET, Key=f"config-{annex_id}.tar.gz", Body=b"tarball")
    events = boto3.client("events")
    events.put_rule(Name=annex_id, ScheduleExpression="rate(5 minutes)")
    events.put_targets(
        Rule=annex_id,
        Targets=[{"Id": annex_id, "Arn": f"arn:aws:lambda:{REGION}:123456789012:function:odi", "Input": "{}"}],
    )
    return ids


def states(ids: list[str]) -> set[str]:
    ec2 = boto3.client("ec2")
    found = set()
    for page in ec2.get_paginator("describe_instances").paginate(InstanceIds=ids):
        for reservation in page["Reservations"]:
            found |= {instance["State"]["Name"] for instance in reservation["Instances"]}
    return found


def config_exists(annex_id: str) -> bool:
    listing = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=f"config-{annex_id}.")
    return listing.get("KeyCount", 0) > 0


def rule_exists(annex_id: str) -> bool:
    return any(rule["Name"] == annex_id for rule in boto3.client("events").list_rules()["Rules"])


def event(annex_id: str, expiration: float, bucket: str = BUCKET) -> dict:
    return {"AnnexID": annex_id, "S3BucketName": bucket, "LeaseExpiration": int(expiration)}


def test_current_lease_touches_nothing(aws):
    ids = start_annex("a1", 3)
    assert lease.odi_handler(event("a1", FUTURE), None) == {"annex_id": "a1", "expired": False}
    assert states(ids) == {"running"}
    assert config_exists("a1") and rule_exists("a1")


def test_expired_lease_ends_only_its_own_annex(aws):
    """a1 must never touch a10 or a1_b, though their ids start the same."""
    mine = start_annex("a1", 4)
    prefixed = start_annex("a10", 3)
    underscored = start_annex("a1_b", 2)
    result = lease.odi_handler(event("a1", PAST), None)
    assert result == {"annex_id": "a1", "expired": True, "ended": 4}
    assert states(mine) == {"terminated"}
    assert states(prefixed) == {"running"}, "annex a10 was touched by a1's lease"
    assert states(underscored) == {"running"}, "annex a1_b was touched by a1's lease"
    assert not config_exists("a1") and config_exists("a10")
    assert not rule_exists("a1") and rule_exists("a10")


def test_untagged_instances_found_by_client_token(aws):
    ids = start_annex("tokens", 2, tagged=False)
    lease.odi_handler(event("tokens", PAST), None)
    assert states(ids) == {"terminated"}


def test_empty_bucket_name_falls_back_to_the_functions_bucket(aws):
    """condor_annex's lease update sends an empty S3BucketName; the original then did nothing."""
    ids = start_annex("upd", 2)
    lease.odi_handler(event("upd", PAST, bucket=""), None)
    assert states(ids) == {"terminated"}
    assert not config_exists("upd")


JOINED_BUCKET = "annex-config-joined"


def grant_lease_role(role_name: str, *buckets: str) -> None:
    """The lease role as the program leaves it: its own policy, then one per joining user's bucket."""
    iam = boto3.client("iam")
    trust = {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    iam.create_role(
        RoleName=role_name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [trust]})
    )
    for number, bucket in enumerate(buckets):
        delete = {
            "Sid": "DeleteExpiredAnnexConfig",
            "Effect": "Allow",
            "Action": "s3:DeleteObject",
            "Resource": f"arn:aws:s3:::{bucket}/config-*.tar.gz",
        }
        logs = {"Effect": "Allow", "Action": ["logs:PutLogEvents"], "Resource": "*"}
        document = {"Version": "2012-10-17", "Statement": [logs, delete] if number == 0 else delete}
        iam.put_role_policy(RoleName=role_name, PolicyName=f"policy-{number}", PolicyDocument=json.dumps(document))


def test_empty_bucket_name_also_clears_the_buckets_joining_users_granted(aws, monkeypatch: pytest.MonkeyPatch):
    """A joining user's annex whose lease was updated: its tarball is in that user's bucket, which
    only the lease role's policies name. A grant whose bucket is gone stops nothing."""
    boto3.client("s3").create_bucket(Bucket=JOINED_BUCKET)
    grant_lease_role("lease-role", BUCKET, JOINED_BUCKET, "annex-config-destroyed")
    monkeypatch.setenv("LEASE_ROLE_NAME", "lease-role")
    ids = start_annex("joined1", 2)
    boto3.client("s3").put_object(Bucket=JOINED_BUCKET, Key="config-joined1.tar.gz", Body=b"tarball")
    boto3.client("s3").put_object(Bucket=JOINED_BUCKET, Key="config-other.tar.gz", Body=b"tarball")
    result = lease.odi_handler(event("joined1", PAST, bucket=""), None)
    assert result["expired"] and states(ids) == {"terminated"} and not rule_exists("joined1")
    assert not config_exists("joined1")
    left = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=JOINED_BUCKET)["Contents"]]
    assert left == ["config-other.tar.gz"]


def test_a_named_bucket_is_the_only_one_cleared(aws, monkeypatch: pytest.MonkeyPatch):
    boto3.client("s3").create_bucket(Bucket=JOINED_BUCKET)
    grant_lease_role("lease-role", BUCKET, JOINED_BUCKET)
    monkeypatch.setenv("LEASE_ROLE_NAME", "lease-role")
    start_annex("named", 1)
    boto3.client("s3").put_object(Bucket=JOINED_BUCKET, Key="config-named.tar.gz", Body=b"tarball")
    lease.odi_handler(event("named", PAST), None)
    assert not config_exists("named")
    assert boto3.client("s3").get_object(Bucket=JOINED_BUCKET, Key="config-named.tar.gz")


def test_missing_object_and_second_invocation_are_harmless(aws):
    ids = start_annex("twice", 2)
    boto3.client("s3").delete_object(Bucket=BUCKET, Key="config-twice.tar.gz")
    first = lease.odi_handler(event("twice", PAST), None)
    second = lease.odi_handler(event("twice", PAST), None)
    assert first["ended"] == 2 and second["ended"] == 0
    assert states(ids) == {"terminated"}


def test_failure_keeps_the_rule_and_raises(aws, monkeypatch: pytest.MonkeyPatch):
    """A missing bucket is a real failure: the rule stays so the next invocation retries."""
    monkeypatch.delenv("S3_BUCKET_NAME")
    ids = start_annex("broken", 1)
    with pytest.raises(lease.LeaseEnforcementError, match="no bucket"):
        lease.odi_handler(event("broken", PAST, bucket=""), None)
    assert states(ids) == {"terminated"}, "instances must end even when the config cannot be deleted"
    assert rule_exists("broken")


def test_structured_log_lines(aws, caplog: pytest.LogCaptureFixture):
    start_annex("logged", 2)
    with caplog.at_level(logging.INFO):
        lease.odi_handler(event("logged", PAST), None)
    lines = [json.loads(record.getMessage()) for record in caplog.records if record.getMessage().startswith("{")]
    assert {"event": "instances_terminated", "annex_id": "logged", "count": 2} in lines
    assert any(line["event"] == "rule_deleted" and line["annex_id"] == "logged" for line in lines)


def test_instances_over_several_pages_and_batches_all_terminated(aws):
    """2,500: three DescribeInstances pages and three TerminateInstances batches of at most 1,000
    (the Stubber tests hold those limits; bench/lease_expiry.py times 5,000)."""
    ids = start_annex("big", 2500)
    result = lease.odi_handler(event("big", PAST), None)
    assert result["ended"] == 2500
    assert states(ids) == {"terminated"}


def test_bad_event_is_a_function_error():
    with pytest.raises(ValueError, match="AnnexID"):
        lease.odi_handler({"LeaseExpiration": 1}, None)
    with pytest.raises(ValueError, match="LeaseExpiration"):
        lease.odi_handler({"AnnexID": "x"}, None)


def spot_fleet(annex_id: str) -> str:
    """moto drops a fleet's ClientToken, so these fleets carry the annex tag; tokens are covered
    by test_fleet_client_tokens_match_exactly."""
    ec2 = boto3.client("ec2")
    reply = ec2.request_spot_fleet(
        SpotFleetRequestConfig={
            "ClientToken": f"{annex_id}_{uuid.uuid4()}",
            "IamFleetRole": "arn:aws:iam::123456789012:role/aws-ec2-spot-fleet-tagging-role",
            "TargetCapacity": 2,
            "AllocationStrategy": "lowestPrice",
            "LaunchSpecifications": [{"ImageId": IMAGE, "InstanceType": "m5.large"}],
            "TagSpecifications": [
                {"ResourceType": "spot-fleet-request", "Tags": [{"Key": "htcondor:AnnexName", "Value": annex_id}]}
            ],
        }
    )
    return reply["SpotFleetRequestId"]


def fleet_state(request_id: str) -> str:
    ec2 = boto3.client("ec2")
    configs = ec2.describe_spot_fleet_requests(SpotFleetRequestIds=[request_id])["SpotFleetRequestConfigs"]
    return configs[0]["SpotFleetRequestState"] if configs else "gone"


def test_spot_fleet_lease_cancels_only_its_own_fleets(aws):
    mine = spot_fleet("s1")
    other = spot_fleet("s10")
    boto3.client("s3").put_object(Bucket=BUCKET, Key="config-s1.tar.gz", Body=b"x")
    result = lease.sfr_handler(event("s1", PAST), None)
    assert result["ended"] == 1
    assert fleet_state(mine) in {"cancelled_terminating", "cancelled", "gone"}
    assert fleet_state(other) == "active", "annex s10's fleet was cancelled by s1's lease"
    assert not config_exists("s1")


@pytest.mark.parametrize(
    "token, annex_id, expected",
    [
        ("s1_4b1c9a3e-0f1e-4a55-9d7e-1c2b3a4d5e6f", "s1", True),
        ("s10_4b1c9a3e-0f1e-4a55-9d7e-1c2b3a4d5e6f", "s1", False),
        ("s1_b_4b1c9a3e-0f1e-4a55-9d7e-1c2b3a4d5e6f", "s1", False),
        ("s1_b_4b1c9a3e-0f1e-4a55-9d7e-1c2b3a4d5e6f", "s1_b", True),
        ("s1", "s1", False),
        (None, "s1", False),
    ],
)
def test_fleet_client_tokens_match_exactly(token, annex_id, expected):
    assert lease.belongs_to(annex_id, token) is expected


def test_listing_pages_and_terminate_batches_follow_aws_limits(monkeypatch: pytest.MonkeyPatch):
    """Against a real EC2 client whose every call is checked (botocore's Stubber): DescribeInstances
    answers at most 1,000 instances a page with a NextToken, as AWS does, and TerminateInstances takes
    at most 1,000 ids a call. moto answers one page and takes any number, so it cannot show this."""
    from botocore.stub import ANY, Stubber

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    ec2 = boto3.client("ec2", region_name=REGION)
    instances = [
        {"InstanceId": f"i-{index:017x}", "ClientToken": f"a1_{uuid.uuid4()}", "Tags": []} for index in range(2500)
    ]
    pages = [instances[start : start + 1000] for start in range(0, 2500, 1000)]
    with Stubber(ec2) as stub:
        for number, page in enumerate(pages):
            expected = {"Filters": ANY, "MaxResults": 1000, **({"NextToken": f"page-{number}"} if number else {})}
            reply = {"Reservations": [{"Instances": page}]}
            if number < len(pages) - 1:
                reply["NextToken"] = f"page-{number + 1}"
            stub.add_response("describe_instances", reply, expected)
        for page in pages:
            stub.add_response(
                "terminate_instances", {"TerminatingInstances": []}, {"InstanceIds": [i["InstanceId"] for i in page]}
            )
        assert lease.terminate_instances(ec2, "a1") == 2500
        stub.assert_no_pending_responses()


ODI = f"arn:aws:lambda:{REGION}:123456789012:function:odi"


def aimed_at(function_arn: str, *rules: str) -> None:
    events = boto3.client("events")
    for rule in rules:
        events.put_rule(Name=rule, ScheduleExpression="rate(5 minutes)")
        events.put_targets(Rule=rule, Targets=[{"Id": rule, "Arn": function_arn, "Input": "{}"}])


@pytest.mark.parametrize("handler", [lease.odi_handler, lease.sfr_handler])
def test_when_the_function_goes_every_rule_aimed_at_it_goes_too(aws, handler):
    """An annex ended from inside keeps its rule until its lease would have expired: destroy's
    invocation (lifecycle scope CRUD) removes it with the function, and no other's."""
    aimed_at(ODI, "shut-down-annex", "another-annex")
    aimed_at(f"arn:aws:lambda:{REGION}:123456789012:function:someone-elses", "not-ours")
    context = type("Context", (), {"invoked_function_arn": ODI})()
    for action in ("create", "update"):
        assert handler({"tf": {"action": action}}, context) == {"teardown": False}
    assert rule_exists("shut-down-annex")
    result = handler({"teardown": "x", "tf": {"action": "delete", "prev_input": {}}}, context)
    assert sorted(result["rules_deleted"]) == ["another-annex", "shut-down-annex"]
    assert [rule["Name"] for rule in boto3.client("events").list_rules()["Rules"]] == ["not-ours"]
