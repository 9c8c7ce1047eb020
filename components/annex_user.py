"""AnnexUser: the IAM identity condor_annex runs as, allowed exactly what it calls."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.contract import KEY_PAIR_NAME, bucket_config_objects
from components.policy import Statement, document
from components.region import RegionSetup

# The role AWS's own spot fleet documentation has users create; condor_annex's SFR config names it.
SPOT_FLEET_ROLE = "aws-ec2-spot-fleet-tagging-role"


@dataclass
class AnnexUserArgs:
    account_id: pulumi.Input[str]
    # Each region's resources the annex user may use.
    regions: list[RegionSetup]
    tags: dict[str, str] = field(default_factory=dict)
    # annexKeyGeneration: which access key the user has.
    key_generation: int = 1
    # The key pair the user's annexes are launched with, the same name in every region.
    key_pair_name: str = KEY_PAIR_NAME
    # What the user's annex names begin with: the key makes, aims and removes only rules named so.
    annex_name_prefix: str = ""


def access_key_name(user: str, generation: int) -> str:
    """The key's resource name, new for each generation: the engine then makes the new key before
    anything that uses it, and deletes the old one, no longer in the program, only after every
    create and update succeeded (the key files rewritten and the checks passed with the new key).
    The first generation keeps the name of the key from before rotation existed."""
    return f"{user}-key" if generation == 1 else f"{user}-key-{generation}"


def region_statements(
    region: RegionSetup, account_id: pulumi.Input[str], key_pair_name: str, annex_name_prefix: str = ""
) -> list[Statement]:
    """What condor_annex calls (annex-contract.md, last section) in one region, and nothing more."""

    def arn(pattern: str) -> pulumi.Output[str]:
        return pulumi.Output.format(pattern, region=region.region, account=account_id)

    # condor_annex names each rule after its annex (annex-create.cpp, PutRule.cpp at v24.0.23), so
    # no narrower resource can be given than the names the user's annexes begin with.
    lease_rules = arn("arn:aws:events:{region}:{account}:rule/" + annex_name_prefix + "*")

    return [
        {
            "Sid": "CheckConnectivity",
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": region.connectivity_arn,
        },
        {
            # condor_annex reads the lease function's CodeSha256 when it creates an annex.
            "Sid": "InspectLeaseFunctions",
            "Effect": "Allow",
            "Action": "lambda:GetFunction",
            "Resource": [region.odi_lease_arn, region.sfr_lease_arn],
        },
        {
            "Sid": "UploadAnnexConfig",
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": pulumi.Output.from_input(region.bucket_name).apply(bucket_config_objects),
        },
        {
            "Sid": "ManageLeaseRules",
            "Effect": "Allow",
            "Action": ["events:PutRule", "events:RemoveTargets", "events:DeleteRule"],
            "Resource": lease_rules,
        },
        {
            # Rules may aim only at this user's own lease functions: no lease of another user's,
            # nothing else of the account's.
            "Sid": "AimRulesAtOwnLeaseFunctions",
            "Effect": "Allow",
            "Action": "events:PutTargets",
            "Resource": lease_rules,
            # A multi-valued key (one value per target of the call): every target must be one of them.
            "Condition": {"ForAllValues:ArnEquals": {"events:TargetArn": [region.odi_lease_arn, region.sfr_lease_arn]}},
        },
        {
            # rule/<prefix>* would also match rules on custom buses (rule/<bus>/<name>); condor_annex
            # uses only the default bus.
            "Sid": "NoRulesOnOtherBuses",
            "Effect": "Deny",
            "Action": ["events:PutRule", "events:PutTargets", "events:RemoveTargets", "events:DeleteRule"],
            "Resource": arn("arn:aws:events:{region}:{account}:rule/*/*"),
        },
        {
            # Launch only into our security group with our key pair; images may be anyone's.
            "Sid": "LaunchAnnexInstances",
            "Effect": "Allow",
            "Action": "ec2:RunInstances",
            "Resource": [
                arn("arn:aws:ec2:{region}::image/*"),
                arn("arn:aws:ec2:{region}:{account}:instance/*"),
                arn("arn:aws:ec2:{region}:{account}:volume/*"),
                arn("arn:aws:ec2:{region}:{account}:network-interface/*"),
                arn("arn:aws:ec2:{region}:{account}:subnet/*"),
                arn("arn:aws:ec2:{region}:{account}:key-pair/" + key_pair_name),
                pulumi.Output.format(
                    "arn:aws:ec2:{0}:{1}:security-group/{2}", region.region, account_id, region.security_group_id
                ),
            ],
        },
        {
            # Tags only as RunInstances makes an instance (condor_annex's TagSpecification): a tag put
            # on an instance already running could otherwise make it look like an annex.
            "Sid": "TagAnnexInstances",
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": arn("arn:aws:ec2:{region}:{account}:instance/*"),
            "Condition": {"StringEquals": {"ec2:CreateAction": "RunInstances"}},
        },
        {
            "Sid": "RequestAnnexSpotFleets",
            "Effect": "Allow",
            "Action": "ec2:RequestSpotFleet",
            "Resource": arn("arn:aws:ec2:{region}:{account}:spot-fleet-request/*"),
        },
        {
            # Describe calls have no resource-level permissions: pin them to this region.
            "Sid": "ReportAnnexStatus",
            "Effect": "Allow",
            "Action": ["ec2:DescribeInstances", "ec2:DescribeSpotFleetRequests"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:RequestedRegion": region.region}},
        },
        {
            "Sid": "PassInstanceRole",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": region.instance_role_arn,
            "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        },
        {
            # What the user's own `condor_annex -check-setup` asks.
            "Sid": "CheckSetup",
            "Effect": "Allow",
            "Action": "cloudformation:DescribeStacks",
            "Resource": arn("arn:aws:cloudformation:{region}:{account}:stack/HTCondorAnnex-*/*"),
        },
    ]


def account_statements(account_id: pulumi.Input[str]) -> list[Statement]:
    """What condor_annex needs whatever the region: the spot fleet role its SFR config names."""
    return [
        {
            "Sid": "PassSpotFleetRole",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": pulumi.Output.format("arn:aws:iam::{0}:role/" + SPOT_FLEET_ROLE, account_id),
            "Condition": {"StringEquals": {"iam:PassedToService": "spotfleet.amazonaws.com"}},
        },
    ]


class AnnexUser(pulumi.ComponentResource):
    """An IAM user allowed exactly what condor_annex calls, region by region, with one access key."""

    user_name: pulumi.Output[str]
    # Each region's policy attachment, by region: what that region's check must wait for.
    attachments: dict[str, pulumi.Resource]
    access_key_id: pulumi.Output[str]
    secret_access_key: pulumi.Output[str]

    def __init__(self, name: str, args: AnnexUserArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("condor-annex:aws:AnnexUser", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # IAM is account-wide: one user for every region, named by Pulumi so that stacks never collide.
        user = aws.iam.User(name, force_destroy=True, tags=args.tags, opts=child)
        # AWS caps a user's inline policies at 2,048 characters in all, which one region's
        # statements nearly fill: each region's go in a managed policy of their own (6,144 each, at
        # most MAX_REGIONS attached), and the inline policy keeps only what no region owns.
        inline = aws.iam.UserPolicy(
            f"{name}-policy", user=user.name, policy=document(*account_statements(args.account_id)), opts=child
        )
        policies: list[pulumi.Resource] = [inline]
        self.attachments = {}
        for region in args.regions:
            region_policy = aws.iam.Policy(
                f"{name}-{region.region}",
                description=f"condor_annex in {region.region}: exactly the calls it makes there",
                policy=document(
                    *region_statements(region, args.account_id, args.key_pair_name, args.annex_name_prefix)
                ),
                tags=args.tags,
                opts=child,
            )
            policies.append(region_policy)
            self.attachments[region.region] = aws.iam.UserPolicyAttachment(
                f"{name}-{region.region}-attachment", user=user.name, policy_arn=region_policy.arn, opts=child
            )
        # The key is made once its permissions are written; each region's check also waits for its
        # attachment. Waiting for the attachments here would add a fourth AWS create in a row
        # before the key files.
        access_key = aws.iam.AccessKey(
            access_key_name(name, args.key_generation),
            user=user.name,
            opts=pulumi.ResourceOptions(parent=self, depends_on=policies, additional_secret_outputs=["secret"]),
        )

        self.user_name = user.name
        self.access_key_id = access_key.id
        self.secret_access_key = pulumi.Output.secret(access_key.secret)
        self.register_outputs({"user_name": self.user_name, "access_key_id": self.access_key_id})
