"""The annex image's cleanup: Image Builder deletes its image record but leaves the AMI it made and
the AMI's snapshots ("This does not delete any EC2 AMIs", DeleteImage in the Image Builder API
reference), which would outlive `pulumi destroy` and cost money. The stack invokes this through an
`aws.lambda_.Invocation` with lifecycle scope CRUD, which adds {"tf": {"action", "prev_input"}} to
the input (pulumi-aws's Invocation documentation): on delete it deregisters the images the input
names, with their snapshots; on update, those the previous input named and the new one does not
(a rebuilt image replaces the old). An image already gone counts as deregistered.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import boto3
from botocore.exceptions import ClientError

logger = logging.getLogger()
logger.setLevel(logging.INFO)

GONE = {"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidSnapshot.NotFound"}


def log(event: str, **fields: Any) -> None:
    logger.info(json.dumps({"event": event, **fields}, sort_keys=True, default=str))


def images_of(payload: dict[str, Any] | None) -> set[str]:
    images = (payload or {}).get("images") or []
    return {image for image in images if isinstance(image, str) and image.startswith("ami-")}


def retired(event: dict[str, Any]) -> set[str]:
    """The images this invocation retires: all it names on delete, the ones dropped on update."""
    lifecycle = event.get("tf") or {}
    action = lifecycle.get("action")
    if action == "delete":
        return images_of(event) | images_of(lifecycle.get("prev_input"))
    if action == "update":
        return images_of(lifecycle.get("prev_input")) - images_of(event)
    return set()


def snapshots_of(ec2: Any, image: str) -> list[str]:
    try:
        found = ec2.describe_images(ImageIds=[image])["Images"]
    except ClientError as error:
        if error.response["Error"]["Code"] in GONE:
            return []
        raise
    return [
        mapping["Ebs"]["SnapshotId"]
        for described in found
        for mapping in described.get("BlockDeviceMappings", [])
        if mapping.get("Ebs", {}).get("SnapshotId")
    ]


def deregister(ec2: Any, image: str) -> list[str]:
    """Deregister the image, then delete its snapshots (a snapshot can only go once no image uses it)."""
    snapshots = snapshots_of(ec2, image)
    try:
        ec2.deregister_image(ImageId=image)
    except ClientError as error:
        if error.response["Error"]["Code"] not in GONE:
            raise
    for snapshot in snapshots:
        try:
            ec2.delete_snapshot(SnapshotId=snapshot)
        except ClientError as error:
            if error.response["Error"]["Code"] not in GONE:
                raise
    log("image_deregistered", image=image, snapshots=snapshots)
    return snapshots


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    images = sorted(retired(event if isinstance(event, dict) else {}))
    if not images:
        return {"deregistered": []}
    ec2 = boto3.client("ec2")
    return {"deregistered": images, "snapshots": [s for image in images for s in deregister(ec2, image)]}
