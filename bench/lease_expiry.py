"""Figures for one expired-lease invocation of the on-demand lease function, against moto.

Prints, for annexes of 1,000 / 2,500 / 5,000 instances, the wall time of the invocation and how
many EC2 API calls it made (describe pages and terminate batches). moto is in-process, so the wall
time is the function's own work plus the emulator's, not AWS's latency.

    .venv/bin/python bench/lease_expiry.py
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections import Counter

import boto3
from common import ROOT, machine_description
from moto import mock_aws

sys.path.insert(0, str(ROOT / "lambda_src"))
import lease

SIZES = (1000, 2500, 5000)
PROFILE_ARN = "arn:aws:iam::123456789012:instance-profile/bench"


def start_annex(annex_id: str, count: int) -> None:
    """As condor_annex launches: the annex's client token and the user's instance profile."""
    boto3.client("iam").create_instance_profile(InstanceProfileName="bench")
    ec2 = boto3.client("ec2")
    while count > 0:
        batch = min(count, 1000)
        launched = ec2.run_instances(
            ImageId="ami-12c6146b",
            MinCount=batch,
            MaxCount=batch,
            ClientToken=f"{annex_id}_{uuid.uuid4()}",
            IamInstanceProfile={"Arn": PROFILE_ARN},
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": [{"Key": "htcondor:AnnexName", "Value": annex_id}]}
            ],
        )["Instances"]
        # moto (5.x) gives the profile to the first instance of a launch only; EC2 gives it to each.
        for instance in launched[1:]:
            ec2.associate_iam_instance_profile(
                IamInstanceProfile={"Arn": PROFILE_ARN}, InstanceId=instance["InstanceId"]
            )
        count -= batch


def main() -> None:
    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106 - moto accepts any key
        S3_BUCKET_NAME="bench-bucket",
        INSTANCE_PROFILE_ARN=PROFILE_ARN,
    )
    print(machine_description())
    print(f"{'instances':>10} {'wall s':>8} {'EC2 calls':>10}  calls by operation")
    for size in SIZES:
        with mock_aws():
            boto3.client("s3").create_bucket(Bucket="bench-bucket")
            start_annex("bench", size)
            calls: Counter[str] = Counter()
            boto3.DEFAULT_SESSION = None
            boto3.setup_default_session()
            boto3.DEFAULT_SESSION.events.register(
                "before-call.ec2", lambda model, counter=calls, **_: counter.update([model.name])
            )
            started = time.perf_counter()
            result = lease.odi_handler({"AnnexID": "bench", "S3BucketName": "bench-bucket", "LeaseExpiration": 0}, None)
            elapsed = time.perf_counter() - started
            assert result["ended"] == size, result
            detail = ", ".join(f"{name} {count}" for name, count in sorted(calls.items()))
            print(f"{size:>10} {elapsed:>8.2f} {sum(calls.values()):>10}  {detail}")


if __name__ == "__main__":
    main()
