"""The lease functions against moto (real boto3 calls into the emulator) and, where moto always
succeeds or drops a field, against botocore's Stubber answering in the shapes of AWS's API
references (EC2: TerminateInstances, CancelSpotFleetRequests; EventBridge: RemoveTargets,
DeleteRule)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

import boto3
import lease
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber
from moto import mock_aws

REGION = "us-east-1"
BUCKET = "annex-config-test"
IMAGE = "ami-12c6146b"  # one of moto's built-in images
PAST = time.time() - 3600
FUTURE = time.time() + 3600
PROFILE_NAME = "annex-instance-1a2b3c4"
PROFILE_ARN = f"arn:aws:iam::123456789012:instance-profile/{PROFILE_NAME}"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("S3_BUCKET_NAME", BUCKET)
    monkeypatch.setenv("INSTANCE_PROFILE_ARN", PROFILE_ARN)
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        boto3.client("iam").create_instance_profile(InstanceProfileName=PROFILE_NAME)
        boto3.client("iam").create_instance_profile(InstanceProfileName="someone-elses")
        yield


def start_annex(annex_id: str, count: int, tagged: bool = True, profile: str = PROFILE_ARN) -> list[str]:
    """As condor_annex does: a client token of `<annex>_<uuid>`, the user's instance profile and the
    annex-name tag."""
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
            ImageId=IMAGE,
            MinCount=batch,
            MaxCount=batch,
            ClientToken=f"{annex_id}_{uuid.uuid4()}",
            IamInstanceProfile={"Arn": profile},
            **kwargs,
        )
        launched = [instance["InstanceId"] for instance in reply["Instances"]]
        # moto (5.x) gives the profile to the first instance of a launch only; EC2 gives it to each.
        for instance_id in launched[1:]:
            ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": profile}, InstanceId=instance_id)
        ids += launched
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


def test_a_tag_or_a_token_alone_makes_no_instance_an_annex(aws):
    """Anyone allowed CreateTags can tag any instance `htcondor:AnnexName`, and another user's annex
    of the same name has a token of the same form: neither is ended by this user's lease."""
    mine = start_annex("a1", 2)
    other_users = start_annex("a1", 1, profile="arn:aws:iam::123456789012:instance-profile/someone-elses")
    ec2 = boto3.client("ec2")
    bystander = ec2.run_instances(ImageId=IMAGE, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2.create_tags(Resources=[bystander], Tags=[{"Key": "htcondor:AnnexName", "Value": "a1"}])
    assert lease.odi_handler(event("a1", PAST), None)["ended"] == 2
    assert states(mine) == {"terminated"}
    assert states(other_users) == {"running"} and states([bystander]) == {"running"}


def test_without_its_instance_profile_the_function_ends_nothing_and_keeps_the_rule(aws, monkeypatch):
    monkeypatch.delenv("INSTANCE_PROFILE_ARN")
    ids = start_annex("unset", 1)
    with pytest.raises(lease.LeaseEnforcementError, match="INSTANCE_PROFILE_ARN"):
        lease.odi_handler(event("unset", PAST), None)
    assert states(ids) == {"running"} and rule_exists("unset")


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


def stubbed(service: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return boto3.client(service, region_name=REGION)


def fleet(request_id: str, token: str, profile: dict[str, str] | None, state: str = "active") -> dict:
    launch = {"ImageId": IMAGE, **({"IamInstanceProfile": profile} if profile else {})}
    return {
        "SpotFleetRequestId": request_id,
        "SpotFleetRequestState": state,
        "SpotFleetRequestConfig": {
            "ClientToken": token,
            "IamFleetRole": "arn:aws:iam::123456789012:role/aws-ec2-spot-fleet-tagging-role",
            "TargetCapacity": 2,
            "LaunchSpecifications": [launch],
        },
    }


def test_spot_fleet_lease_cancels_only_its_own_fleets_and_reports_what_aws_refused(monkeypatch):
    """moto drops a fleet's ClientToken, so fleets are answered here as DescribeSpotFleetRequests
    does. Ours: the annex's token and this user's profile (by ARN or, as a launch specification may
    give it, by name). CancelSpotFleetRequests answers 200 with per-fleet failures: a fleet already
    gone is done, any other refusal is a failure."""
    ec2 = stubbed("ec2", monkeypatch)
    token = f"s1_{uuid.uuid4()}"
    listed = [
        fleet("sfr-mine", token, {"Arn": PROFILE_ARN}),
        fleet("sfr-mine-by-name", token, {"Name": PROFILE_NAME}),
        fleet("sfr-gone", token, {"Arn": PROFILE_ARN}),
        fleet("sfr-refused", token, {"Arn": PROFILE_ARN}),
        fleet("sfr-s10", f"s10_{uuid.uuid4()}", {"Arn": PROFILE_ARN}),
        fleet("sfr-other-user", token, {"Arn": "arn:aws:iam::123456789012:instance-profile/someone-elses"}),
        fleet("sfr-no-profile", token, None),
        fleet("sfr-cancelled", token, {"Arn": PROFILE_ARN}, state="cancelled"),
    ]
    with Stubber(ec2) as stub:
        stub.add_response("describe_spot_fleet_requests", {"SpotFleetRequestConfigs": listed}, {})
        stub.add_response(
            "cancel_spot_fleet_requests",
            {
                "SuccessfulFleetRequests": [
                    {"SpotFleetRequestId": "sfr-mine", "CurrentSpotFleetRequestState": "cancelled_terminating"},
                    {"SpotFleetRequestId": "sfr-mine-by-name", "CurrentSpotFleetRequestState": "cancelled_terminating"},
                ],
                "UnsuccessfulFleetRequests": [
                    {"SpotFleetRequestId": "sfr-gone", "Error": {"Code": "fleetRequestIdDoesNotExist", "Message": "x"}},
                    {"SpotFleetRequestId": "sfr-refused", "Error": {"Code": "unexpectedError", "Message": "try later"}},
                ],
            },
            {
                "SpotFleetRequestIds": ["sfr-mine", "sfr-mine-by-name", "sfr-gone", "sfr-refused"],
                "TerminateInstances": True,
            },
        )
        cancelled, failures = lease.cancel_spot_fleets(ec2, "s1", PROFILE_ARN)
        stub.assert_no_pending_responses()
    assert cancelled == 2
    assert failures == ["cancelling sfr-refused: unexpectedError: try later"]


def test_a_refused_fleet_keeps_the_rule_and_the_tarball_still_goes(aws):
    start_annex("s2", 0)
    refused = ["cancelling sfr-1: unexpectedError: try later"]
    with pytest.raises(lease.LeaseEnforcementError, match="sfr-1"):
        lease.enforce(event("s2", PAST), lambda ec2, annex, profile: (0, refused))
    assert rule_exists("s2") and not config_exists("s2")


def test_a_batch_refused_as_a_whole_is_ended_one_instance_at_a_time(monkeypatch):
    """TerminateInstances fails the whole call when one instance may not be ended (here, one with
    termination protection): the others are still ended, the one is a failure, a gone one is done."""
    ec2 = stubbed("ec2", monkeypatch)
    ids = ["i-0000000000000000a", "i-0000000000000000b", "i-0000000000000000c"]
    instances = [
        {"InstanceId": each, "ClientToken": f"a1_{uuid.uuid4()}", "IamInstanceProfile": {"Arn": PROFILE_ARN}}
        for each in ids
    ]
    protected = "The instance 'i-0000000000000000b' may not be terminated. Modify its 'disableApiTermination'"
    with Stubber(ec2) as stub:
        stub.add_response("describe_instances", {"Reservations": [{"Instances": instances}]}, None)
        stub.add_client_error("terminate_instances", "OperationNotPermitted", protected, 400, {"InstanceIds": ids})
        stub.add_response("terminate_instances", {"TerminatingInstances": []}, {"InstanceIds": [ids[0]]})
        stub.add_client_error("terminate_instances", "OperationNotPermitted", protected, 400, {"InstanceIds": [ids[1]]})
        stub.add_client_error(
            "terminate_instances", "InvalidInstanceID.NotFound", "gone", 400, {"InstanceIds": [ids[2]]}
        )
        ended, failures = lease.terminate_instances(ec2, "a1", PROFILE_ARN)
        stub.assert_no_pending_responses()
    assert ended == 1
    assert (
        len(failures) == 1
        and failures[0].startswith(f"terminating {ids[1]}")
        and "OperationNotPermitted" in failures[0]
    )


def test_delete_rule_waits_while_eventbridge_still_counts_the_removed_target(monkeypatch):
    events = stubbed("events", monkeypatch)
    waits: list[float] = []
    has_targets = "Rule can't be deleted since it has targets."
    with Stubber(events) as stub:
        stub.add_response("remove_targets", {"FailedEntryCount": 0, "FailedEntries": []}, {"Rule": "a1", "Ids": ["a1"]})
        stub.add_client_error("delete_rule", "ValidationException", has_targets, 400, {"Name": "a1"})
        stub.add_client_error("delete_rule", "ValidationException", has_targets, 400, {"Name": "a1"})
        stub.add_response("delete_rule", {}, {"Name": "a1"})
        lease.delete_rule(events, "a1", sleep=waits.append)
        stub.assert_no_pending_responses()
    assert waits == [1, 2]

    with Stubber(events) as stub:
        stub.add_response("remove_targets", {"FailedEntryCount": 0, "FailedEntries": []}, {"Rule": "a1", "Ids": ["a1"]})
        for _ in range(len(lease.DELETE_RULE_WAITS) + 1):
            stub.add_client_error("delete_rule", "ValidationException", has_targets, 400, {"Name": "a1"})
        with pytest.raises(ClientError, match="has targets"):
            lease.delete_rule(events, "a1", sleep=lambda _: None)
        stub.assert_no_pending_responses()


def test_a_target_eventbridge_failed_to_remove_keeps_the_rule(monkeypatch):
    """RemoveTargets answers 200 with the targets it could not remove in FailedEntries."""
    events = stubbed("events", monkeypatch)
    failed = {
        "FailedEntryCount": 1,
        "FailedEntries": [{"TargetId": "a1", "ErrorCode": "ConcurrentModificationException", "ErrorMessage": "x"}],
    }
    with Stubber(events) as stub:
        stub.add_response("remove_targets", failed, {"Rule": "a1", "Ids": ["a1"]})
        with pytest.raises(lease.LeaseEnforcementError, match="ConcurrentModificationException"):
            lease.delete_rule(events, "a1")
        stub.assert_no_pending_responses()


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
    """DescribeInstances answers at most 1,000 instances a page with a NextToken, as AWS does, and
    TerminateInstances takes at most 1,000 ids a call. moto answers one page and takes any number."""
    ec2 = stubbed("ec2", monkeypatch)
    instances = [
        {
            "InstanceId": f"i-{index:017x}",
            "ClientToken": f"a1_{uuid.uuid4()}",
            "IamInstanceProfile": {"Arn": PROFILE_ARN},
        }
        for index in range(2500)
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
        assert lease.terminate_instances(ec2, "a1", PROFILE_ARN) == (2500, [])
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
