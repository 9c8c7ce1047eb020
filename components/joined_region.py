"""JoinedRegion: one user's own part of a region whose setup another stack made (`joinStack`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.account import SharedSetup
from components.bucket import ConfigurationBucket, ConfigurationBucketArgs
from components.contract import bucket_config_objects
from components.instance_profile import InstanceProfile, InstanceProfileArgs
from components.policy import document
from components.security_group import admissions, admit


@dataclass
class JoinedRegionArgs:
    region: str
    account_id: pulumi.Input[str]
    shared: SharedSetup
    ssh_ingress_cidrs: list[str]
    condor_ingress_cidrs: list[str]
    tags: dict[str, str] = field(default_factory=dict)


class JoinedRegion(pulumi.ComponentResource):
    """This user's own bucket and instance profile beside the shared functions, marker stacks and
    security group: condor_annex names every tarball `config-*.tar.gz`, so one bucket shared by two
    users would let each user's key, and each user's annex instances, reach the other's tarballs,
    which carry the pool password. A RegionSetup, as AnnexRegion is, the shared parts' ids included."""

    def __init__(self, name: str, args: JoinedRegionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("condor-annex:aws:JoinedRegion", name, None, opts)
        shared = args.shared
        child = pulumi.ResourceOptions(parent=self)

        bucket = ConfigurationBucket(f"{name}-config", ConfigurationBucketArgs(tags=args.tags), opts=child)
        profile = InstanceProfile(
            f"{name}-instance",
            InstanceProfileArgs(account_id=args.account_id, bucket_name=bucket.bucket_name, tags=args.tags),
            opts=child,
        )
        # The shared lease functions delete an expired annex's tarball from the bucket its rule names,
        # or, when a lease update left the name empty, from every bucket their role's policies name.
        for role_name in shared.lease_role_names:
            aws.iam.RolePolicy(
                f"{name}-lease-{role_name}",
                role=role_name,
                policy=document(
                    {
                        "Sid": "DeleteExpiredAnnexConfig",
                        "Effect": "Allow",
                        "Action": "s3:DeleteObject",
                        "Resource": bucket.bucket_name.apply(bucket_config_objects),
                    }
                ),
                opts=child,
            )
        wanted = admissions(args.condor_ingress_cidrs, args.ssh_ingress_cidrs)
        admit(
            f"{name}-sg",
            shared.security_group_id,
            [each for each in wanted if (each.port, each.cidr) not in shared.admitted],
            args.tags,
            self,
        )

        self.region = args.region
        self.bucket_name = bucket.bucket_name
        self.odi_lease_arn = pulumi.Output.from_input(shared.odi_lease_arn)
        self.sfr_lease_arn = pulumi.Output.from_input(shared.sfr_lease_arn)
        self.connectivity_arn = pulumi.Output.from_input(shared.connectivity_arn)
        self.instance_profile_arn = profile.profile_arn
        self.instance_role_arn = profile.role_arn
        self.security_group_id = pulumi.Output.from_input(shared.security_group_id)
        self.check_stack_ids = pulumi.Output.from_input(shared.check_stack_ids)
        # A check waiting on this component waits for every resource beneath it.
        self.ready = self
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "instance_profile_arn": self.instance_profile_arn,
                "security_group_id": self.security_group_id,
            }
        )
