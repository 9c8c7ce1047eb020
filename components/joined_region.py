"""JoinedRegion: one user's own part of a region whose setup another stack made (`joinStack`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from components.account import SharedSetup
from components.region import UsersPartsArgs, users_parts


@dataclass
class JoinedRegionArgs:
    region: str
    account_id: pulumi.Input[str]
    shared: SharedSetup
    # This user's "<project>/<stack>": their lease functions are named apart by it.
    owner: str
    ssh_ingress_cidrs: list[str]
    condor_ingress_cidrs: list[str]
    log_retention_days: int
    annex_name_prefix: str = ""
    tags: dict[str, str] = field(default_factory=dict)


class JoinedRegion(pulumi.ComponentResource):
    """This user's own bucket, instance profile, lease functions and security group beside the
    connectivity function and marker stacks that condor_annex fixes by name, which are shared.

    Nothing else is shared, so no user reaches another's annexes: condor_annex names every tarball
    `config-*.tar.gz`, and a shared bucket would let each user's key and instances read the other's
    (they carry the pool password); a shared lease function would end whatever annex any user's rule
    names; a shared group would admit every user's CIDRs to every user's instances, and its 60
    inbound rules would cap how many could join. condor_annex reads the functions' ARNs and the
    group's id per user, from user_config. A RegionSetup, as AnnexRegion is."""

    def __init__(self, name: str, args: JoinedRegionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("condor-annex:aws:JoinedRegion", name, None, opts)
        shared = args.shared
        child = pulumi.ResourceOptions(parent=self)

        own = users_parts(
            name,
            UsersPartsArgs(
                region=args.region,
                account_id=args.account_id,
                vpc_id=shared.vpc_id,
                ssh_ingress_cidrs=args.ssh_ingress_cidrs,
                condor_ingress_cidrs=args.condor_ingress_cidrs,
                log_retention_days=args.log_retention_days,
                tags=args.tags,
                joining_owner=args.owner,
                annex_name_prefix=args.annex_name_prefix,
            ),
            lambda _name_before_regions: child,
        )
        bucket, profile, functions, group = own.bucket, own.profile, own.functions, own.group

        self.region = args.region
        self.bucket_name = bucket.bucket_name
        self.odi_lease_arn = functions.odi_lease_arn
        self.sfr_lease_arn = functions.sfr_lease_arn
        self.connectivity_arn = pulumi.Output.from_input(shared.connectivity_arn)
        self.instance_profile_arn = profile.profile_arn
        self.instance_role_arn = profile.role_arn
        self.security_group_id = group.group_id
        self.check_stack_ids = pulumi.Output.from_input(shared.check_stack_ids)
        # A check waiting on this component waits for every resource beneath it.
        self.ready = self
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "odi_lease_arn": self.odi_lease_arn,
                "sfr_lease_arn": self.sfr_lease_arn,
                "instance_profile_arn": self.instance_profile_arn,
                "security_group_id": self.security_group_id,
            }
        )
