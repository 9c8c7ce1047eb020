"""InstanceProfile: what annex instances run as."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.contract import bucket_config_objects
from components.policy import document, trust


@dataclass
class InstanceProfileArgs:
    account_id: pulumi.Input[str]
    bucket_name: pulumi.Input[str]
    tags: dict[str, str] = field(default_factory=dict)


class InstanceProfile(pulumi.ComponentResource):
    """The annex instances' role: fetch their config tarball, and read their own role's policies."""

    role_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    profile_arn: pulumi.Output[str]

    def __init__(self, name: str, args: InstanceProfileArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("condor-annex:aws:InstanceProfile", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        role = aws.iam.Role(f"{name}-role", assume_role_policy=trust("ec2.amazonaws.com"), tags=args.tags, opts=child)
        profile = aws.iam.InstanceProfile(f"{name}-profile", role=role.name, path="/", tags=args.tags, opts=child)

        # The annex image's boot script finds its bucket by regex-matching this exact resource
        # string in its own role's policies: it must stay a plain string, one per statement.
        aws.iam.RolePolicy(
            f"{name}-config-download",
            role=role.id,
            policy=document(
                {
                    "Sid": "DownloadAnnexConfig",
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": pulumi.Output.from_input(args.bucket_name).apply(bucket_config_objects),
                }
            ),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-introspection",
            role=role.id,
            policy=document(
                {
                    # How the boot script reads that policy: through its own profile and role only.
                    "Sid": "ReadOwnRole",
                    "Effect": "Allow",
                    "Action": [
                        "iam:GetInstanceProfile",
                        "iam:GetRolePolicy",
                        "iam:ListAttachedRolePolicies",
                        "iam:ListRolePolicies",
                    ],
                    "Resource": [role.arn, profile.arn],
                },
                {
                    "Sid": "ReadAttachedPolicies",
                    "Effect": "Allow",
                    "Action": ["iam:GetPolicy", "iam:GetPolicyVersion"],
                    "Resource": pulumi.Output.format("arn:aws:iam::{0}:policy/*", args.account_id),
                },
                {
                    "Sid": "FindOwnInstance",
                    "Effect": "Allow",
                    "Action": ["ec2:DescribeInstances", "ec2:DescribeSpotFleetRequests"],
                    "Resource": "*",
                },
            ),
            opts=child,
        )

        self.role_name = role.name
        self.role_arn = role.arn
        self.profile_arn = profile.arn
        self.register_outputs({"role_arn": self.role_arn, "profile_arn": self.profile_arn})
