"""SecurityGroup: what may reach annex instances."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.contract import ANNEX_INSTANCE_PORT


@dataclass(frozen=True)
class Admission:
    """TCP from one CIDR block to one port of annex instances."""

    port: int
    purpose: str
    cidr: str


def admissions(condor_cidrs: list[str], ssh_cidrs: list[str]) -> list[Admission]:
    """The port an annex instance's HTCondor listens on, for the submit machine, and SSH for
    debugging, each from its own CIDR list. Not the pool's collectorPort: an instance listens on
    its own shared port, 9618, whatever port the pool's collector has."""
    return [
        *(Admission(ANNEX_INSTANCE_PORT, "condor", cidr) for cidr in condor_cidrs),
        *(Admission(22, "ssh", cidr) for cidr in ssh_cidrs),
    ]


@dataclass
class SecurityGroupArgs:
    vpc_id: pulumi.Input[str]
    ssh_ingress_cidrs: list[str]
    condor_ingress_cidrs: list[str]
    tags: dict[str, str] = field(default_factory=dict)


class SecurityGroup(pulumi.ComponentResource):
    """HTCondor's port for the submit machine, SSH for debugging, each from its own CIDR list."""

    group_id: pulumi.Output[str]

    def __init__(self, name: str, args: SecurityGroupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("condor-annex:aws:SecurityGroup", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        group = aws.ec2.SecurityGroup(
            name,
            description="HTCondor annex instances: HTCondor and SSH from configured sources",
            vpc_id=args.vpc_id,
            tags=args.tags,
            opts=child,
        )
        # One rule resource per source, so changing one CIDR replaces one rule, not the group.
        for admission in admissions(args.condor_ingress_cidrs, args.ssh_ingress_cidrs):
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-{admission.purpose}-{admission.cidr.replace('/', '-')}",
                security_group_id=group.id,
                description=f"{admission.purpose} from {admission.cidr}",
                ip_protocol="tcp",
                from_port=admission.port,
                to_port=admission.port,
                cidr_ipv4=admission.cidr,
                tags=args.tags,
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
