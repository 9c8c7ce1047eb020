"""ConfigurationBucket: where condor_annex uploads each annex's config tarball."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws


@dataclass
class ConfigurationBucketArgs:
    tags: dict[str, str] = field(default_factory=dict)


class ConfigurationBucket(pulumi.ComponentResource):
    """A private, encrypted, TLS-only bucket that `pulumi destroy` can always empty and delete."""

    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ConfigurationBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("condor-annex:aws:ConfigurationBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # Each tarball carries a copy of the pool password, so versioning stays off: the lease
        # function's delete must really remove it, not leave a noncurrent version behind.
        # force_destroy because annexes leave tarballs that destroy must not trip over.
        bucket = aws.s3.Bucket(name, force_destroy=True, tags=args.tags, opts=child)
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[
                {"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}, "bucket_key_enabled": True}
            ],
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket.id,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "DenyInsecureTransport",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [bucket.arn, pulumi.Output.concat(bucket.arn, "/*")],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ],
                }
            ),
            # S3 rejects a policy put while the public-access block is still being applied.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access]),
        )

        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.register_outputs({"bucket_name": self.bucket_name, "bucket_arn": self.bucket_arn})
