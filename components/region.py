"""AnnexRegion: what `condor_annex -setup` creates in one AWS region, through that region's provider."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import pulumi

from components.bucket import ConfigurationBucket, ConfigurationBucketArgs
from components.check_setup import CheckSetupStacks, CheckSetupStacksArgs
from components.instance_profile import InstanceProfile, InstanceProfileArgs
from components.lambdas import LeaseFunctions, LeaseFunctionsArgs
from components.security_group import SecurityGroup, SecurityGroupArgs


class RegionSetup(Protocol):
    """What the annex user, the user's knobs and the outputs need of a region's setup, whether this
    stack made it (AnnexRegion) or joined another stack's (JoinedRegion)."""

    region: str
    bucket_name: pulumi.Output[str]
    odi_lease_arn: pulumi.Output[str]
    sfr_lease_arn: pulumi.Output[str]
    connectivity_arn: pulumi.Output[str]
    instance_profile_arn: pulumi.Output[str]
    instance_role_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    check_stack_ids: pulumi.Output[dict[str, str]]
    ready: pulumi.Resource


@dataclass
class UsersParts:
    """What each user has of their own in a region, whether they set it up or joined another's."""

    bucket: ConfigurationBucket
    profile: InstanceProfile
    functions: LeaseFunctions
    group: SecurityGroup


@dataclass
class UsersPartsArgs:
    region: str
    account_id: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    ssh_ingress_cidrs: list[str]
    condor_ingress_cidrs: list[str]
    log_retention_days: int
    tags: dict[str, str]
    # A joining user's "<project>/<stack>", which names their lease functions apart; None for the first.
    joining_owner: str | None = None
    annex_name_prefix: str = ""


def users_parts(name: str, args: UsersPartsArgs, opts_for: Callable[[str], pulumi.ResourceOptions]) -> UsersParts:
    """The bucket, instance profile, lease functions and security group, each with the options
    opts_for gives for the name it had before `regions` existed."""
    bucket = ConfigurationBucket(
        f"{name}-config", ConfigurationBucketArgs(tags=args.tags), opts=opts_for("annex-config")
    )
    profile = InstanceProfile(
        f"{name}-instance",
        InstanceProfileArgs(account_id=args.account_id, bucket_name=bucket.bucket_name, tags=args.tags),
        opts=opts_for("annex-instance"),
    )
    functions = LeaseFunctions(
        f"{name}-functions",
        LeaseFunctionsArgs(
            region=args.region,
            account_id=args.account_id,
            bucket_name=bucket.bucket_name,
            instance_profile_arn=profile.profile_arn,
            log_retention_days=args.log_retention_days,
            joining_owner=args.joining_owner,
            annex_name_prefix=args.annex_name_prefix,
            tags=args.tags,
        ),
        opts=opts_for("annex-functions"),
    )
    group = SecurityGroup(
        f"{name}-sg",
        SecurityGroupArgs(
            vpc_id=args.vpc_id,
            ssh_ingress_cidrs=args.ssh_ingress_cidrs,
            condor_ingress_cidrs=args.condor_ingress_cidrs,
            tags=args.tags,
        ),
        opts=opts_for("annex-sg"),
    )
    return UsersParts(bucket, profile, functions, group)


@dataclass
class AnnexRegionArgs:
    region: str
    account_id: pulumi.Input[str]
    # The region's default VPC, where condor_annex launches annex instances.
    vpc_id: str
    ssh_ingress_cidrs: list[str]
    condor_ingress_cidrs: list[str]
    log_retention_days: int
    # A stack made before `regions` existed holds this region's resources under the names of then:
    # aliases to those names let `pulumi up` update them in place instead of replacing them (the
    # replacements would collide with the HTCondorAnnex-* names still in use).
    keeps_names_from_before_regions: bool = False
    annex_name_prefix: str = ""
    tags: dict[str, str] = field(default_factory=dict)


class AnnexRegion(pulumi.ComponentResource):
    """The bucket, the three functions, the instance profile, the security group and the four
    marker stacks of one region. Every AWS resource beneath it uses the provider given in `opts`."""

    def __init__(self, name: str, args: AnnexRegionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("condor-annex:aws:AnnexRegion", name, None, opts)

        def child(name_before_regions: str) -> pulumi.ResourceOptions:
            if not args.keeps_names_from_before_regions:
                return pulumi.ResourceOptions(parent=self)
            before = pulumi.Alias(name=name_before_regions, parent=pulumi.ROOT_STACK_RESOURCE)
            return pulumi.ResourceOptions(parent=self, aliases=[before])

        own = users_parts(
            name,
            UsersPartsArgs(
                region=args.region,
                account_id=args.account_id,
                vpc_id=args.vpc_id,
                ssh_ingress_cidrs=args.ssh_ingress_cidrs,
                condor_ingress_cidrs=args.condor_ingress_cidrs,
                log_retention_days=args.log_retention_days,
                tags=args.tags,
                annex_name_prefix=args.annex_name_prefix,
            ),
            child,
        )
        bucket, profile, functions, group = own.bucket, own.profile, own.functions, own.group
        stacks = CheckSetupStacks(
            f"{name}-check-setup",
            CheckSetupStacksArgs(
                bucket_name=bucket.bucket_name,
                odi_lease_arn=functions.odi_lease_arn,
                sfr_lease_arn=functions.sfr_lease_arn,
                connectivity_arn=functions.connectivity_arn,
                instance_profile_arn=profile.profile_arn,
                security_group_id=group.group_id,
                marks=[bucket, functions, profile, group],
                name_before_regions="check-setup" if args.keeps_names_from_before_regions else None,
                tags=args.tags,
            ),
            opts=child("check-setup"),
        )

        self.region = args.region
        self.bucket_name = bucket.bucket_name
        self.odi_lease_arn = functions.odi_lease_arn
        self.sfr_lease_arn = functions.sfr_lease_arn
        self.connectivity_arn = functions.connectivity_arn
        self.instance_profile_arn = profile.profile_arn
        self.instance_role_arn = profile.role_arn
        self.security_group_id = group.group_id
        self.check_stack_ids = stacks.stack_ids
        self.ready = stacks
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "odi_lease_arn": self.odi_lease_arn,
                "sfr_lease_arn": self.sfr_lease_arn,
                "connectivity_arn": self.connectivity_arn,
                "instance_profile_arn": self.instance_profile_arn,
                "security_group_id": self.security_group_id,
            }
        )
