"""Lease enforcement for condor_annex: when an annex's lease has expired, end the annex.

A CloudWatch Events rule named after the annex invokes this every five minutes with
{"AnnexID", "S3BucketName", "LeaseExpiration"}. Unlike the original functions:

- An annex is what condor_annex launched, by what no one can change afterwards: the client token
  (`<AnnexID>_<uuid>`, matched exactly, so annex `a1` never touches annex `a10`) and this user's
  instance profile (INSTANCE_PROFILE_ARN). A tag proves nothing: anyone allowed CreateTags could
  put `htcondor:AnnexName` on any instance.
- Every listing is paginated; an empty S3BucketName (condor_annex sends one after a lease update)
  falls back to the bucket this function was deployed with.
- AWS's partial answers are read, as its API reference gives them: a TerminateInstances batch
  refused as a whole is retried one instance at a time; CancelSpotFleetRequests' per-fleet
  failures, RemoveTargets' failed entries and a DeleteRule refused while the target removal
  settles are failures or retries, never success.
- The rule is deleted only once everything else succeeded: after a partial failure the next
  invocation tries again.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
from botocore.exceptions import ClientError

# EC2 takes at most 1,000 instance ids in one TerminateInstances call; spot fleet cancels, 100.
TERMINATE_BATCH = 1000
CANCEL_BATCH = 100
LIVE_INSTANCE_STATES = ["pending", "running", "stopping", "stopped"]
LIVE_FLEET_STATES = {"submitted", "active", "modifying"}
# Answers that mean the thing is already gone (EC2 and EventBridge API references).
GONE_CODES = {"InvalidInstanceID.NotFound", "fleetRequestIdDoesNotExist", "ResourceNotFoundException"}
# EventBridge may refuse DeleteRule for a while after RemoveTargets ("Rule can't be deleted since
# it has targets"): waits between tries, within the function's 60-second timeout.
DELETE_RULE_WAITS = (1, 2, 4, 8, 16)

logger = logging.getLogger()
logger.setLevel(logging.INFO)


class LeaseEnforcementError(RuntimeError):
    """Something the expired annex left could not be removed; the rule stays for a retry."""


def log(event: str, **fields: Any) -> None:
    logger.info(json.dumps({"event": event, **fields}, sort_keys=True, default=str))


def belongs_to(annex_id: str, client_token: str | None) -> bool:
    """Tokens are `<AnnexID>_<uuid>`; uuids have no `_`, so the part before the last `_` is the id."""
    return bool(client_token) and client_token.rpartition("_")[0] == annex_id


def batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _profile_named(profile: dict[str, str] | None, profile_arn: str) -> bool:
    """An instance profile as EC2 reports it: by ARN, or (a spot fleet's launch specification) by name."""
    profile = profile or {}
    return profile.get("Arn") == profile_arn or profile.get("Name") == profile_arn.rpartition("/")[2]


def annex_instances(ec2: Any, annex_id: str, profile_arn: str) -> list[str]:
    found = []
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "instance-state-name", "Values": LIVE_INSTANCE_STATES}], PaginationConfig={"PageSize": 1000}
    )
    for page in pages:
        for reservation in page.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                if belongs_to(annex_id, instance.get("ClientToken")) and _profile_named(
                    instance.get("IamInstanceProfile"), profile_arn
                ):
                    found.append(instance["InstanceId"])
    return found


def annex_spot_fleets(ec2: Any, annex_id: str, profile_arn: str) -> list[str]:
    found = []
    for page in ec2.get_paginator("describe_spot_fleet_requests").paginate():
        for request in page.get("SpotFleetRequestConfigs", []):
            config = request.get("SpotFleetRequestConfig", {})
            launches = config.get("LaunchSpecifications", [])
            if (
                request.get("SpotFleetRequestState") in LIVE_FLEET_STATES
                and belongs_to(annex_id, config.get("ClientToken"))
                and launches
                and all(_profile_named(launch.get("IamInstanceProfile"), profile_arn) for launch in launches)
            ):
                found.append(request["SpotFleetRequestId"])
    return found


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def terminate_instances(ec2: Any, annex_id: str, profile_arn: str) -> tuple[int, list[str]]:
    """(instances ended, failures). EC2 refuses a whole batch when one instance may not be ended
    (termination protection, a policy): the batch is then tried one instance at a time."""
    instance_ids = annex_instances(ec2, annex_id, profile_arn)
    failures: list[str] = []
    ended = 0
    for batch in batches(instance_ids, TERMINATE_BATCH):
        try:
            ec2.terminate_instances(InstanceIds=batch)
            ended += len(batch)
            continue
        except ClientError:
            pass
        for instance_id in batch:
            try:
                ec2.terminate_instances(InstanceIds=[instance_id])
                ended += 1
            except ClientError as error:
                if _code(error) not in GONE_CODES:
                    failures.append(f"terminating {instance_id}: {error}")
    log("instances_terminated", annex_id=annex_id, count=ended)
    return ended, failures


def cancel_spot_fleets(ec2: Any, annex_id: str, profile_arn: str) -> tuple[int, list[str]]:
    """(fleets cancelled, failures): CancelSpotFleetRequests answers 200 with the fleets it could not
    cancel in UnsuccessfulFleetRequests."""
    request_ids = annex_spot_fleets(ec2, annex_id, profile_arn)
    failures: list[str] = []
    cancelled = 0
    for batch in batches(request_ids, CANCEL_BATCH):
        reply = ec2.cancel_spot_fleet_requests(SpotFleetRequestIds=batch, TerminateInstances=True)
        cancelled += len(reply.get("SuccessfulFleetRequests", []))
        for refused in reply.get("UnsuccessfulFleetRequests", []):
            error = refused.get("Error", {})
            if error.get("Code") not in GONE_CODES:
                failures.append(
                    f"cancelling {refused.get('SpotFleetRequestId')}: {error.get('Code')}: {error.get('Message')}"
                )
    log("spot_fleets_cancelled", annex_id=annex_id, count=cancelled)
    return cancelled, failures


def delete_config(s3: Any, bucket: str, annex_id: str) -> None:
    # S3 answers a delete of a missing key with success: a second run is harmless. A bucket that is
    # gone holds no tarball either.
    key = f"config-{annex_id}.tar.gz"
    try:
        s3.delete_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response["Error"]["Code"] != "NoSuchBucket":
            raise
        log("config_bucket_gone", annex_id=annex_id, bucket=bucket)
        return
    log("config_deleted", annex_id=annex_id, bucket=bucket, key=key)


def delete_rule(events: Any, annex_id: str, sleep: Callable[[float], None] = time.sleep) -> None:
    """Remove the rule's one target, then the rule: condor_annex names both after the annex."""
    try:
        removed = events.remove_targets(Rule=annex_id, Ids=[annex_id])
    except ClientError as error:
        if _code(error) not in GONE_CODES:
            raise
    else:
        if removed.get("FailedEntryCount"):
            raise LeaseEnforcementError(f"removing rule {annex_id}'s target: {removed.get('FailedEntries')}")
    for wait in (*DELETE_RULE_WAITS, None):
        try:
            events.delete_rule(Name=annex_id)
            break
        except ClientError as error:
            if _code(error) in GONE_CODES:
                break
            if _code(error) != "ValidationException" or wait is None:
                raise
            log("rule_delete_retried", annex_id=annex_id, wait=wait, reason=str(error))
            sleep(wait)
    log("rule_deleted", annex_id=annex_id)


def parse_event(event: dict[str, Any]) -> tuple[str, str | None, float]:
    annex_id = event.get("AnnexID")
    if not isinstance(annex_id, str) or not annex_id:
        raise ValueError(f"event has no AnnexID: {json.dumps(event, default=str)}")
    try:
        expiration = float(event["LeaseExpiration"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"event for annex {annex_id} has no numeric LeaseExpiration") from error
    # condor_annex's lease update sends an empty S3BucketName: None, the function's own bucket is used.
    return annex_id, event.get("S3BucketName") or None, expiration


def enforce(
    event: dict[str, Any],
    end_annex: Callable[[Any, str, str], tuple[int, list[str]]],
    now: Callable[[], float] = time.time,
) -> dict[str, Any]:
    annex_id, bucket, expiration = parse_event(event)
    if now() <= expiration:
        log("lease_current", annex_id=annex_id, expires=expiration)
        return {"annex_id": annex_id, "expired": False}

    log("lease_expired", annex_id=annex_id, expired_at=expiration, bucket=bucket)
    ec2, s3, events = boto3.client("ec2"), boto3.client("s3"), boto3.client("events")
    failures: list[str] = []
    ended = 0
    profile_arn = os.environ.get("INSTANCE_PROFILE_ARN", "")
    if not profile_arn:
        failures.append("INSTANCE_PROFILE_ARN is not set: no instance can be told to be this user's annex")
    else:
        try:
            ended, refused = end_annex(ec2, annex_id, profile_arn)
            failures += refused
        except ClientError as error:
            failures.append(f"ending the annex's instances: {error}")
    bucket = bucket or os.environ.get("S3_BUCKET_NAME", "")
    if not bucket:
        failures.append("no bucket: the event's S3BucketName is empty and S3_BUCKET_NAME is not set")
    else:
        try:
            delete_config(s3, bucket, annex_id)
        except ClientError as error:
            failures.append(f"deleting config-{annex_id}.tar.gz from {bucket}: {error}")

    if failures:
        log("lease_enforcement_failed", annex_id=annex_id, failures=failures)
        raise LeaseEnforcementError(f"annex {annex_id}: " + "; ".join(failures))
    delete_rule(events, annex_id)
    return {"annex_id": annex_id, "expired": True, "ended": ended}


def teardown(event: dict[str, Any], function_arn: str) -> dict[str, Any]:
    """The stack's own lifecycle invocation (lifecycle scope CRUD adds {"tf": {"action"}}): when the
    function goes, so does every rule still aimed at it. An annex ended from inside (`condor_off
    -annex`, `htcondor annex shutdown`) leaves its rule until its lease would have expired, and a
    rule outliving its function would stay in the account for good."""
    if (event.get("tf") or {}).get("action") != "delete":
        return {"teardown": False}
    events = boto3.client("events")
    rules = [
        name
        for page in events.get_paginator("list_rule_names_by_target").paginate(TargetArn=function_arn)
        for name in page["RuleNames"]
    ]
    for rule in rules:
        # condor_annex names the rule and its one target after the annex.
        delete_rule(events, rule)
    return {"teardown": True, "rules_deleted": rules}


def odi_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """On-demand annexes: terminate the annex's instances."""
    if "tf" in event:
        return teardown(event, context.invoked_function_arn)
    return enforce(event, terminate_instances)


def sfr_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Spot fleet annexes: cancel the annex's fleet requests, terminating their instances."""
    if "tf" in event:
        return teardown(event, context.invoked_function_arn)
    return enforce(event, cancel_spot_fleets)
