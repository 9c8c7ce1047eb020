"""SecurityGroup: what may reach annex instances."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws


@dataclass
class SecurityGroupArgs:
    vpc_id: pulumi.Input[str]
    collector_port: int
    ssh_ingress_cidrs: list[str]
    condor_ingress_cidrs: list[str]
    tags: dict[str, str] = field(default_factory=dict)


class SecurityGroup(pulumi.ComponentResource):
    """The collector port for the submit machine, SSH for debugging, each from its own CIDR list."""

    group_id: pulumi.Output[str]

    def __init__(self, name: str, args: SecurityGroupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("condor-annex:aws:SecurityGroup", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        group = aws.ec2.SecurityGroup(
            name,
            description="HTCondor annex instances: collector port and SSH from configured sources",
            vpc_id=args.vpc_id,
            tags=args.tags,
            opts=child,
        )
        # One rule resource per source, so changing one CIDR replaces one rule, not the group.
        for port, purpose, cidrs in (
            (args.collector_port, "condor", args.condor_ingress_cidrs),
            (22, "ssh", args.ssh_ingress_cidrs),
        ):
            for cidr in cidrs:
                aws.vpc.SecurityGroupIngressRule(
                    f"{name}-{purpose}-{cidr.replace('/', '-')}",
                    security_group_id=group.id,
                    description=f"{purpose} from {cidr}",
                    ip_protocol="tcp",
                    from_port=port,
                    to_port=port,
                    cidr_ipv4=cidr,
                    opts=child,
                )
        # Annex instances fetch their config from S3 and call the collector back: all egress.
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-egress",
            security_group_id=group.id,
            description="annex instances reach S3, EC2 metadata and the collector",
            ip_protocol="-1",
            cidr_ipv4="0.0.0.0/0",
            opts=child,
        )

        self.group_id = group.id
        self.register_outputs({"group_id": self.group_id})
