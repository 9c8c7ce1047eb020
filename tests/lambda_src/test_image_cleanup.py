"""The annex image's cleanup against moto (what it removes, and what it leaves) and against
botocore's Stubber (AWS's answers moto does not give: an image already gone, a refusal)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import image_cleanup
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

REGION = "us-east-1"


@pytest.fixture
def ec2(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


def built_image(ec2: object, name: str) -> tuple[str, str]:
    """An image as a build leaves one: the AMI and its root snapshot."""
    image = ec2.register_image(Name=name, RootDeviceName="/dev/xvda", VirtualizationType="hvm")["ImageId"]
    snapshot = ec2.describe_images(ImageIds=[image])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    return image, snapshot


def snapshots(ec2: object) -> set[str]:
    return {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def images(ec2: object) -> set[str]:
    return {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}


def lifecycle(action: str, images_now: list[str], images_before: list[str]) -> dict:
    return {"images": images_now, "tf": {"action": action, "prev_input": {"images": images_before}}}


def test_delete_deregisters_the_image_and_its_snapshot(ec2):
    image, snapshot = built_image(ec2, "condor-annex-htcondor-25.0.13-1")
    other, other_snapshot = built_image(ec2, "someone-elses")
    result = image_cleanup.handler(lifecycle("delete", [image], [image]), None)
    assert result == {"deregistered": [image], "snapshots": [snapshot]}
    assert images(ec2) == {other}
    assert snapshot not in snapshots(ec2) and other_snapshot in snapshots(ec2)


def test_create_removes_nothing_and_an_update_only_the_replaced_image(ec2):
    old, old_snapshot = built_image(ec2, "condor-annex-htcondor-25.0.12-1")
    new, _ = built_image(ec2, "condor-annex-htcondor-25.0.13-1")
    assert image_cleanup.handler(lifecycle("create", [old], [old]), None) == {"deregistered": []}
    assert image_cleanup.handler(lifecycle("update", [new], [new]), None) == {"deregistered": []}
    result = image_cleanup.handler(lifecycle("update", [new], [old]), None)
    assert result["deregistered"] == [old] and images(ec2) == {new}
    assert old_snapshot not in snapshots(ec2)


def test_an_image_already_gone_counts_as_deregistered(ec2):
    image, _ = built_image(ec2, "condor-annex-htcondor-25.0.13-1")
    image_cleanup.handler(lifecycle("delete", [image], [image]), None)
    assert image_cleanup.handler(lifecycle("delete", [image], [image]), None)["deregistered"] == [image]


@pytest.mark.parametrize("code", ["InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"])
def test_aws_saying_the_image_is_gone_is_no_failure(code: str):
    """DescribeImages' and DeregisterImage's error codes for an image that no longer exists (EC2 API
    reference, "Error codes for the Amazon EC2 API")."""
    ec2 = boto3.client("ec2", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b")
    with Stubber(ec2) as stubbed:
        stubbed.add_client_error("describe_images", service_error_code=code)
        stubbed.add_client_error("deregister_image", service_error_code=code)
        assert image_cleanup.deregister(ec2, "ami-0123456789abcdef0") == []
        stubbed.assert_no_pending_responses()


def test_a_refusal_fails_the_invocation_so_destroy_stops():
    ec2 = boto3.client("ec2", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b")
    with Stubber(ec2) as stubbed:
        stubbed.add_response(
            "describe_images",
            {
                "Images": [
                    {"ImageId": "ami-0123456789abcdef0", "BlockDeviceMappings": [{"Ebs": {"SnapshotId": "snap-1"}}]}
                ]
            },
        )
        stubbed.add_client_error("deregister_image", service_error_code="UnauthorizedOperation", http_status_code=403)
        with pytest.raises(ClientError, match="UnauthorizedOperation"):
            image_cleanup.deregister(ec2, "ami-0123456789abcdef0")
