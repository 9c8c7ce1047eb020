"""AnnexUser: the IAM identity condor_annex runs as, allowed exactly what it calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.contract import KEY_PAIR_NAME, bucket_config_objects
from components.policy import Statement, document
from components.region import AnnexRegion

# The role AWS's own spot fleet documentation has users create; condor_annex's SFR config names it.
SPOT_FLEET_ROLE = "aws-ec2-spot-fleet-tagging-role"


@dataclass
class AnnexUserArgs:
    account_id: pulumi.Input[str]
    # Each region's resources the annex user may use.
    regions: list[AnnexRegion]
    tags: dict[str, str] = field(default_factory=dict)


def annex_user_statements(args: AnnexUserArgs) -> list[Statement]:
    """What condor_annex calls (annex-contract.md, last section) in each region, and nothing more."""

    def each(value: Callable[[AnnexRegion], pulumi.Input[str]]) -> list[pulumi.Input[str]]:
        return [value(region) for region in args.regions]

    def arns(pattern: str) -> list[pulumi.Input[str]]:
        """The pattern, with {region} and {account} filled in, for every region."""
        return each(lambda region: pulumi.Output.format(pattern, region=region.region, account=args.account_id))

    return [
        {
            "Sid": "CheckConnectivity",
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": each(lambda region: region.connectivity_arn),
        },
        {
            # condor_annex reads the lease function's CodeSha256 when it creates an annex.
            "Sid": "InspectLeaseFunctions",
            "Effect": "Allow",
            "Action": "lambda:GetFunction",
            "Resource": [arn for region in args.regions for arn in (region.odi_lease_arn, region.sfr_lease_arn)],
        },
        {
            "Sid": "UploadAnnexConfig",
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": each(lambda region: pulumi.Output.from_input(region.bucket_name).apply(bucket_config_objects)),
        },
        {
            "Sid": "ManageLeaseRules",
            "Effect": "Allow",
            "Action": ["events:PutRule", "events:PutTargets", "events:RemoveTargets", "events:DeleteRule"],
            "Resource": arns("arn:aws:events:{region}:{account}:rule/*"),
        },
        {
            # Launch only into our security group with our key pair; images may be anyone's.
            "Sid": "LaunchAnnexInstances",
            "Effect": "Allow",
            "Action": "ec2:RunInstances",
            "Resource": [
                *arns("arn:aws:ec2:{region}::image/*"),
                *arns("arn:aws:ec2:{region}:{account}:instance/*"),
                *arns("arn:aws:ec2:{region}:{account}:volume/*"),
                *arns("arn:aws:ec2:{region}:{account}:network-interface/*"),
                *arns("arn:aws:ec2:{region}:{account}:subnet/*"),
                *arns("arn:aws:ec2:{region}:{account}:key-pair/" + KEY_PAIR_NAME),
                *each(
                    lambda region: pulumi.Output.format(
                        "arn:aws:ec2:{0}:{1}:security-group/{2}",
                        region.region,
                        args.account_id,
                        region.security_group_id,
                    )
                ),
            ],
        },
        {
            "Sid": "TagAnnexInstances",
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": arns("arn:aws:ec2:{region}:{account}:instance/*"),
        },
        {
            "Sid": "RequestAnnexSpotFleets",
            "Effect": "Allow",
            "Action": "ec2:RequestSpotFleet",
            "Resource": arns("arn:aws:ec2:{region}:{account}:spot-fleet-request/*"),
        },
        {
            # Describe calls have no resource-level permissions: pin them to the annex's regions.
            "Sid": "ReportAnnexStatus",
            "Effect": "Allow",
            "Action": ["ec2:DescribeInstances", "ec2:DescribeSpotFleetRequests"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:RequestedRegion": [region.region for region in args.regions]}},
        },
        {
            "Sid": "PassInstanceRole",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": each(lambda region: region.instance_role_arn),
            "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        },
        {
            "Sid": "PassSpotFleetRole",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": pulumi.Output.format("arn:aws:iam::{0}:role/" + SPOT_FLEET_ROLE, args.account_id),
            "Condition": {"StringEquals": {"iam:PassedToService": "spotfleet.amazonaws.com"}},
        },
        {
            # What the user's own `condor_annex -check-setup` asks.
            "Sid": "CheckSetup",
            "Effect": "Allow",
            "Action": "cloudformation:DescribeStacks",
            "Resource": arns("arn:aws:cloudformation:{region}:{account}:stack/HTCondorAnnex-*/*"),
        },
    ]


class AnnexUser(pulumi.ComponentResource):
    """An IAM user with a least-privilege inline policy and one access key."""

    user_name: pulumi.Output[str]
    policy_document: pulumi.Output[str]
    access_key_id: pulumi.Output[str]
    secret_access_key: pulumi.Output[str]

    def __init__(self, name: str, args: AnnexUserArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("condor-annex:aws:AnnexUser", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # IAM is account-wide: one user for every region, named by Pulumi so that stacks never collide.
        user = aws.iam.User(name, force_destroy=True, tags=args.tags, opts=child)
        policy = aws.iam.UserPolicy(
            f"{name}-policy", user=user.name, policy=document(*annex_user_statements(args)), opts=child
        )
        # The key is created after the policy so that it never exists with no permissions known.
        access_key = aws.iam.AccessKey(
            f"{name}-key",
            user=user.name,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy], additional_secret_outputs=["secret"]),
        )

        self.user_name = user.name
        self.policy_document = policy.policy
        self.access_key_id = access_key.id
        self.secret_access_key = pulumi.Output.secret(access_key.secret)
        self.register_outputs({"user_name": self.user_name, "access_key_id": self.access_key_id})
