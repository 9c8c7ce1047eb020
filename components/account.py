"""What each region of the AWS account already holds, asked before any AWS resource is registered.

`condor_annex` fixes some names per account and region: the four HTCondorAnnex-* stacks that
-check-setup reads, HTCondorAnnex-CheckConnectivity, and the key pair; this program fixes the lease
functions' names and their log groups likewise. An earlier `condor_annex -setup`, or another stack
of this program, already holds them, and AWS would refuse them part-way through an up, after other
resources were made. And condor_annex launches annex instances without naming a subnet, which EC2
takes only in a region with a default VPC. So the program asks first and refuses with what to do.

Checked with the real engine (the pulumi v3.274.1 CLI, pulumi-language-python 3.259.0) and
pulumi-command 1.2.1's `local.run` standing in for the AWS data sources, which cannot run here: an
invoke failure the program catches leaves the update successful, and an invoke through a provider
that depends on a command runs, in an `up`, only once that command has finished (in a preview, at
once). So these questions are asked after the machine's preflight, and a preview asks them too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.contract import CONNECTIVITY_FUNCTION_NAME, KEY_PAIR_NAME, STACK_NAMES
from components.lambdas import LEASE_FUNCTIONS

FUNCTION_NAMES = [*(function for function, _ in LEASE_FUNCTIONS.values()), CONNECTIVITY_FUNCTION_NAME]
LOG_GROUP_PREFIX = "/aws/lambda/HTCondorAnnex-"


class AccountConflict(pulumi.RunError):
    """The account already holds names this stack must create, or a region lacks a default VPC."""


@dataclass(frozen=True)
class Owner:
    """Who made a resource, by the tags every resource of this program carries."""

    project: str
    stack: str

    def made(self, tags: dict[str, str] | None) -> bool:
        tags = tags or {}
        return tags.get("pulumi-project") == self.project and tags.get("pulumi-stack") == self.stack


def _held_by(tags: dict[str, str] | None) -> str:
    tags = tags or {}
    if "pulumi-stack" in tags:
        return f"Pulumi stack {tags.get('pulumi-project')}/{tags['pulumi-stack']}"
    return "no Pulumi stack (condor_annex -setup, or made by hand)"


def _tags_or_none(read: Callable[[], object]) -> dict[str, str] | None:
    """The tags of a resource a single-resource data source reads, or None when there is none.

    These data sources fail when the resource is missing; any failure is taken as "missing", since
    a resource that is there but unreadable is then refused by AWS's create, as before this check."""
    try:
        return dict(getattr(read(), "tags", None) or {})
    except Exception:  # the provider raises no type of its own for a missing resource
        return None


def region_problems(region: str, provider: aws.Provider, owner: Owner) -> tuple[str | None, list[str], list[str]]:
    """This region's default VPC id (None if it has none), the names others hold there, and what
    else stands in this stack's way there."""
    options = pulumi.InvokeOptions(provider=provider)
    held: list[str] = []

    def conflict(kind: str, name: str, tags: dict[str, str] | None) -> None:
        if tags is not None and not owner.made(tags):
            held.append(f"{kind} {name} in {region} already exists, held by {_held_by(tags)}")

    functions = set(aws.lambda_.get_functions(opts=options).function_names or [])
    for name in FUNCTION_NAMES:
        if name in functions:
            conflict("Lambda function", name, aws.lambda_.get_function(function_name=name, opts=options).tags)
    log_groups = aws.cloudwatch.get_log_groups(log_group_name_prefix=LOG_GROUP_PREFIX, opts=options)
    for name in (f"/aws/lambda/{function}" for function in FUNCTION_NAMES):
        if name in (log_groups.log_group_names or []):
            conflict("log group", name, aws.cloudwatch.get_log_group(name=name, opts=options).tags)
    key_pair = _tags_or_none(lambda: aws.ec2.get_key_pair(key_name=KEY_PAIR_NAME, opts=options))
    conflict("key pair", KEY_PAIR_NAME, key_pair)
    for name in STACK_NAMES:
        stack = _tags_or_none(lambda name=name: aws.cloudformation.get_stack(name=name, opts=options))
        conflict("CloudFormation stack", name, stack)

    default_vpcs = aws.ec2.get_vpcs(filters=[{"name": "is-default", "values": ["true"]}], opts=options).ids or []
    other: list[str] = []
    if not default_vpcs:
        other.append(
            f"{region} has no default VPC: condor_annex launches annex instances without naming a subnet, which "
            f"EC2 accepts only there. Make one with `aws ec2 create-default-vpc --region {region}`"
        )
    return (default_vpcs[0] if default_vpcs else None), held, other


# What to do about names another setup holds.
REMEDY = (
    "condor_annex allows one setup per account and region. If an earlier `condor_annex -setup` made these, "
    f"remove it: delete the CloudFormation stacks {', '.join(STACK_NAMES)} (which removes the functions they "
    f"made), the key pair {KEY_PAIR_NAME} and the log groups /aws/lambda/HTCondorAnnex-* in each region named. "
    "Adopting them with `pulumi import` would leave them owned by those stacks. If another stack of this "
    "program holds them, use that stack, or another account or region."
)


def default_vpcs(regions: dict[str, aws.Provider], owner: Owner) -> dict[str, str]:
    """Each region's default VPC id; raises AccountConflict naming every problem in every region."""
    vpcs: dict[str, str] = {}
    held: list[str] = []
    other: list[str] = []
    for region, provider in regions.items():
        vpc, region_held, region_other = region_problems(region, provider, owner)
        held += region_held
        other += region_other
        if vpc:
            vpcs[region] = vpc
    if held or other:
        raise AccountConflict(
            "the AWS account is not ready for this stack; nothing was created:\n  "
            + "\n  ".join(held + other)
            + (f"\n{REMEDY}" if held else "")
        )
    return vpcs
