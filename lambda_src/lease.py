"""Lease enforcement for condor_annex: when an annex's lease has expired, end the annex.

A CloudWatch Events rule named after the annex invokes this every five minutes with
{"AnnexID", "S3BucketName", "LeaseExpiration"}. Unlike the original functions, an annex is
matched exactly (annex `a1` never touches annex `a10`), every listing is paginated, and an empty
S3BucketName (condor_annex sends one after a lease update) falls back to the bucket this function
was deployed with and to every bucket a stack joining this setup let it delete tarballs from, as
its role's inline policies name them. The rule is deleted only once everything else succeeded:
after a partial failure the next invocation tries again.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import boto3
from botocore.exceptions import ClientError

ANNEX_TAG = "htcondor:AnnexName"
# EC2 takes at most 1,000 instance ids in one TerminateInstances call; spot fleet cancels, 100.
TERMINATE_BATCH = 1000
CANCEL_BATCH = 100
LIVE_INSTANCE_STATES = ["pending", "running", "stopping", "stopped"]
LIVE_FLEET_STATES = {"submitted", "active", "modifying"}
# The tarballs' resource in a policy that lets this function delete them: the bucket is group 1.
CONFIG_OBJECTS = re.compile(r"^arn:aws:s3:::([^/]+)/config-\*\.tar\.gz$")

logger = logging.getLogger()
logger.setLevel(logging.INFO)


class LeaseEnforcementError(RuntimeError):
    """Something the expired annex left could not be removed; the rule stays for a retry."""


def log(event: str, **fields: Any) -> None:
    logger.info(json.dumps({"event": event, **fields}, sort_keys=True, default=str))


def belongs_to(annex_id: str, client_token: str | None, tags: Iterable[dict[str, str]] = ()) -> bool:
    """Tokens are `<AnnexID>_<uuid>`; uuids have no `_`, so the part before the last `_` is the id."""
    if client_token and client_token.rpartition("_")[0] == annex_id:
        return True
    return any(tag.get("Key") == ANNEX_TAG and tag.get("Value") == annex_id for tag in tags)


def batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def annex_instances(ec2: Any, annex_id: str) -> list[str]:
    found = []
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "instance-state-name", "Values": LIVE_INSTANCE_STATES}], PaginationConfig={"PageSize": 1000}
    )
    for page in pages:
        for reservation in page.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                if belongs_to(annex_id, instance.get("ClientToken"), instance.get("Tags", [])):
                    found.append(instance["InstanceId"])
    return found


def annex_spot_fleets(ec2: Any, annex_id: str) -> list[str]:
    found = []
    for page in ec2.get_paginator("describe_spot_fleet_requests").paginate():
        for request in page.get("SpotFleetRequestConfigs", []):
            token = request.get("SpotFleetRequestConfig", {}).get("ClientToken")
            if request.get("SpotFleetRequestState") in LIVE_FLEET_STATES and belongs_to(
                annex_id, token, request.get("Tags", [])
            ):
                found.append(request["SpotFleetRequestId"])
    return found


def terminate_instances(ec2: Any, annex_id: str) -> int:
    instance_ids = annex_instances(ec2, annex_id)
    for batch in batches(instance_ids, TERMINATE_BATCH):
        ec2.terminate_instances(InstanceIds=batch)
    log("instances_terminated", annex_id=annex_id, count=len(instance_ids))
    return len(instance_ids)


def cancel_spot_fleets(ec2: Any, annex_id: str) -> int:
    request_ids = annex_spot_fleets(ec2, annex_id)
    for batch in batches(request_ids, CANCEL_BATCH):
        ec2.cancel_spot_fleet_requests(SpotFleetRequestIds=batch, TerminateInstances=True)
    log("spot_fleets_cancelled", annex_id=annex_id, count=len(request_ids))
    return len(request_ids)


def delete_config(s3: Any, bucket: str, annex_id: str) -> None:
    # S3 answers a delete of a missing key with success: a second run is harmless. A bucket that is
    # gone (a joining user's, destroyed) holds no tarball either.
    key = f"config-{annex_id}.tar.gz"
    try:
        s3.delete_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response["Error"]["Code"] != "NoSuchBucket":
            raise
        log("config_bucket_gone", annex_id=annex_id, bucket=bucket)
        return
    log("config_deleted", annex_id=annex_id, bucket=bucket, key=key)


def _listed(value: Any) -> list[Any]:
    """A policy element that may be one value or a list of them."""
    return value if isinstance(value, list) else [value]


def granted_buckets(iam: Any, role_name: str) -> set[str]:
    """The buckets this function's role may delete tarballs from, by its inline policies."""
    buckets = set()
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=role_name):
        for policy_name in page["PolicyNames"]:
            document = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
            for statement in _listed(document["Statement"]):
                if statement.get("Effect") != "Allow" or "s3:DeleteObject" not in _listed(statement.get("Action")):
                    continue
                matches = (CONFIG_OBJECTS.match(resource) for resource in _listed(statement.get("Resource")))
                buckets.update(match.group(1) for match in matches if match)
    return buckets


def delete_rule(events: Any, annex_id: str) -> None:
    for call, kwargs in (
        (events.remove_targets, {"Rule": annex_id, "Ids": [annex_id]}),
        (events.delete_rule, {"Name": annex_id}),
    ):
        try:
            call(**kwargs)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
    log("rule_deleted", annex_id=annex_id)


def parse_event(event: dict[str, Any]) -> tuple[str, str | None, float]:
    annex_id = event.get("AnnexID")
    if not isinstance(annex_id, str) or not annex_id:
        raise ValueError(f"event has no AnnexID: {json.dumps(event, default=str)}")
    try:
        expiration = float(event["LeaseExpiration"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"event for annex {annex_id} has no numeric LeaseExpiration") from error
    # condor_annex's lease update sends an empty S3BucketName: None, the buckets are looked up.
    return annex_id, event.get("S3BucketName") or None, expiration


def buckets_of(bucket: str | None) -> list[str]:
    """The event's bucket; for an empty one, ours and those of the users who joined this setup."""
    if bucket:
        return [bucket]
    ours = os.environ.get("S3_BUCKET_NAME", "")
    role_name = os.environ.get("LEASE_ROLE_NAME", "")
    joined = granted_buckets(boto3.client("iam"), role_name) if role_name else set()
    return sorted(({ours} if ours else set()) | joined)


def enforce(
    event: dict[str, Any], end_annex: Callable[[Any, str], int], now: Callable[[], float] = time.time
) -> dict[str, Any]:
    annex_id, bucket, expiration = parse_event(event)
    if now() <= expiration:
        log("lease_current", annex_id=annex_id, expires=expiration)
        return {"annex_id": annex_id, "expired": False}

    log("lease_expired", annex_id=annex_id, expired_at=expiration, bucket=bucket)
    ec2, s3, events = boto3.client("ec2"), boto3.client("s3"), boto3.client("events")
    failures: list[str] = []
    ended = 0
    try:
        ended = end_annex(ec2, annex_id)
    except ClientError as error:
        failures.append(f"ending the annex's instances: {error}")
    buckets: list[str] = []
    try:
        buckets = buckets_of(bucket)
    except ClientError as error:
        failures.append(f"reading the buckets this function may delete from: {error}")
    else:
        if not buckets:
            failures.append("no bucket: the event's S3BucketName is empty and S3_BUCKET_NAME is not set")
    for each in buckets:
        try:
            delete_config(s3, each, annex_id)
        except ClientError as error:
            failures.append(f"deleting config-{annex_id}.tar.gz from {each}: {error}")

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
