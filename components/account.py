"""What each region of the AWS account already holds, asked before any AWS resource is registered.

`condor_annex` fixes some names per account and region: the four HTCondorAnnex-* stacks that
-check-setup reads, HTCondorAnnex-CheckConnectivity, and the key pair; this program fixes the lease
functions' names and their log groups likewise. An earlier `condor_annex -setup`, or another stack
of this program, already holds them, and AWS would refuse them part-way through an up, after other
resources were made. And condor_annex launches annex instances without naming a subnet, which EC2
takes only in a region with a default VPC. So the program asks first and refuses with what to do.

A stack that joins another (`joinStack`) asks the same questions the other way round: every fixed
name must be there, held by the stack it joins, and what it shares (the connectivity function and
the marker stacks) is read from AWS, where both users' stacks meet; the stack it joins may be kept
in a state backend this user cannot read. Its own lease functions' names must be free or its own.

The account's IAM roles are asked about too: each stack makes some in every region it adds, and a
role past the account's quota is refused by IAM part-way through an up (refuse_past_the_role_quota).

Checked with the real engine (the pulumi v3.274.1 CLI, pulumi-language-python 3.259.0) and
pulumi-command 1.2.1's `local.run` standing in for the AWS data sources, which cannot run here: an
invoke failure the program catches leaves the update successful, and an invoke through a provider
that depends on a command runs, in an `up`, only once that command has finished (in a preview, at
once). So these questions are asked after the machine's preflight, and a preview asks them too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.contract import (
    CONNECTIVITY_FUNCTION_NAME,
    KEY_PAIR_NAME,
    STACK_NAMES,
)
from components.lambdas import LEASE_FUNCTIONS, lease_function_name

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

    def __str__(self) -> str:
        return f"{self.project}/{self.stack}"


@dataclass(frozen=True)
class SharedSetup:
    """What a joining stack uses of the setup it joins, in one region, as AWS holds it."""

    connectivity_arn: str
    check_stack_ids: dict[str, str]
    # The region's default VPC, where this user's own security group goes.
    vpc_id: str


def _held_by(tags: dict[str, str] | None) -> str:
    tags = tags or {}
    if "pulumi-stack" in tags:
        return f"Pulumi stack {tags.get('pulumi-project')}/{tags['pulumi-stack']}"
    return "no Pulumi stack (condor_annex -setup, or made by hand)"


# How the provider's single-resource data sources say a resource is missing (terraform-provider-aws:
# tfresource.NotFound's "couldn't find resource", SingularDataSourceFindError's "no matching ...").
NOT_FOUND = ("couldn't find resource", "no matching")


def _unanswered(question: str, permission: str, error: Exception) -> AccountConflict:
    return AccountConflict(
        f"could not {question}, so nothing was created: {error}\n"
        f"The deployer's AWS credentials need {permission}, and must be valid."
    )


def _found_or_none(read: Callable[[], Any], what: str, region: str, permission: str) -> Any:
    """What a single-resource data source reads, or None when AWS says there is none.

    Any other failure (access denied, throttling, expired credentials) stops the up: taken as
    "missing", it would let the up collide part-way with what is really there."""
    try:
        return read()
    except Exception as error:  # the provider raises no type of its own
        if any(marker in str(error) for marker in NOT_FOUND):
            return None
        raise _unanswered(f"tell whether {what} exists in {region}", f"{permission} in {region}", error) from error


def _answer(read: Callable[[], Any], question: str, permission: str) -> Any:
    try:
        return read()
    except Exception as error:  # the provider raises no type of its own
        raise _unanswered(question, permission, error) from error


def _tags(found: Any) -> dict[str, str] | None:
    return None if found is None else dict(getattr(found, "tags", None) or {})


@dataclass
class _Region:
    """One region's fixed names as found: each data source's result, None where the name is free."""

    name: str
    options: pulumi.InvokeOptions
    functions: dict[str, Any]
    log_groups: dict[str, Any]
    stacks: dict[str, Any]
    vpc_id: str | None

    def held(
        self, function_names: Sequence[str] = FUNCTION_NAMES, stacks: bool = True
    ) -> dict[str, dict[str, str] | None]:
        """'<kind> <name>' -> its tags, or None where nothing holds the name."""
        return {
            **{f"Lambda function {name}": _tags(self.functions.get(name)) for name in function_names},
            **{f"log group /aws/lambda/{name}": _tags(self.log_groups.get(name)) for name in function_names},
            **{f"CloudFormation stack {name}": _tags(self.stacks.get(name)) for name in STACK_NAMES if stacks},
        }

    def key_pair_tags(self, key_name: str) -> dict[str, str] | None:
        found = _found_or_none(
            lambda: aws.ec2.get_key_pair(key_name=key_name, opts=self.options),
            f"the key pair {key_name}",
            self.name,
            "ec2:DescribeKeyPairs",
        )
        return _tags(found)

    def no_default_vpc(self) -> list[str]:
        if self.vpc_id:
            return []
        return [
            f"{self.name} has no default VPC: condor_annex launches annex instances without naming a subnet, which "
            f"EC2 accepts only there. Make one with `aws ec2 create-default-vpc --region {self.name}`"
        ]


def _read_region(region: str, provider: aws.Provider, own_functions: tuple[str, ...] = ()) -> _Region:
    options = pulumi.InvokeOptions(provider=provider)
    names = [*FUNCTION_NAMES, *own_functions]
    listed = set(aws.lambda_.get_functions(opts=options).function_names or [])
    functions = {name: aws.lambda_.get_function(function_name=name, opts=options) for name in names if name in listed}
    log_group_names = aws.cloudwatch.get_log_groups(log_group_name_prefix=LOG_GROUP_PREFIX, opts=options)
    log_groups = {
        name: aws.cloudwatch.get_log_group(name=f"/aws/lambda/{name}", opts=options)
        for name in names
        if f"/aws/lambda/{name}" in (log_group_names.log_group_names or [])
    }
    stacks = {
        name: found
        for name in STACK_NAMES
        if (
            found := _found_or_none(
                lambda name=name: aws.cloudformation.get_stack(name=name, opts=options),
                f"the CloudFormation stack {name}",
                region,
                "cloudformation:DescribeStacks and cloudformation:GetTemplate",
            )
        )
    }
    default_vpcs = aws.ec2.get_vpcs(filters=[{"name": "is-default", "values": ["true"]}], opts=options).ids or []
    return _Region(region, options, functions, log_groups, stacks, default_vpcs[0] if default_vpcs else None)


def _conflicts(region: _Region, held: dict[str, dict[str, str] | None], owner: Owner) -> list[str]:
    return [
        f"{label} in {region.name} already exists, held by {_held_by(tags)}"
        for label, tags in held.items()
        if tags is not None and not owner.made(tags)
    ]


# What to do about names another setup holds.
REMEDY = (
    "condor_annex allows one setup per account and region. If an earlier `condor_annex -setup` made these, "
    f"remove it: delete the CloudFormation stacks {', '.join(STACK_NAMES)} (which removes the functions they "
    f"made), the key pair {KEY_PAIR_NAME} and the log groups /aws/lambda/HTCondorAnnex-* in each region named. "
    "Adopting them with `pulumi import` would leave them owned by those stacks. If another stack of this "
    "program holds them, use that stack, another account or region, or join it: set joinStack to the "
    "<project>/<stack> named above."
)


def _refuse(problems: list[str], remedy: str | None) -> None:
    if problems:
        raise AccountConflict(
            "the AWS account is not ready for this stack; nothing was created:\n  "
            + "\n  ".join(problems)
            + (f"\n{remedy}" if remedy else "")
        )


def _renamed_from(holders: list[dict[str, str] | None], owner: Owner) -> list[str]:
    """Other stacks of this project among the holders: this stack's own former names, if it was
    renamed, since every resource keeps the tags of the name it was made under."""
    return sorted(
        {
            tags["pulumi-stack"]
            for tags in holders
            if tags
            and tags.get("pulumi-project") == owner.project
            and tags.get("pulumi-stack", owner.stack) != owner.stack
        }
    )


def default_vpcs(regions: dict[str, aws.Provider], owner: Owner) -> dict[str, str]:
    """Each region's default VPC id; raises AccountConflict naming every problem in every region."""
    found = [_read_region(region, provider) for region, provider in regions.items()]
    holders = [{**region.held(), f"key pair {KEY_PAIR_NAME}": region.key_pair_tags(KEY_PAIR_NAME)} for region in found]
    held = [
        problem for region, holds in zip(found, holders, strict=True) for problem in _conflicts(region, holds, owner)
    ]
    remedy = REMEDY
    for former in _renamed_from([tags for holds in holders for tags in holds.values()], owner):
        remedy += (
            f" If {owner.project}/{former} is this stack under the name it had before `pulumi stack rename`, "
            f"rename it back (`pulumi stack rename {former}`): its AWS resources carry the name they were made under."
        )
    _refuse(held + [problem for region in found for problem in region.no_default_vpc()], remedy if held else None)
    return {region.name: region.vpc_id for region in found if region.vpc_id}


def _shared_setup(region: _Region) -> SharedSetup:
    return SharedSetup(
        connectivity_arn=region.functions[CONNECTIVITY_FUNCTION_NAME].arn,
        check_stack_ids={name: stack.id for name, stack in region.stacks.items()},
        vpc_id=region.vpc_id or "",
    )


def joined_setups(
    regions: dict[str, aws.Provider], owner: Owner, joined: Owner, key_pair_name: str
) -> dict[str, SharedSetup]:
    """What `joined` set up in each region, for this stack to share; raises AccountConflict naming
    every region where it set up nothing, every name someone else holds, and this stack's own key
    pair and lease function names if another holds them."""
    own_functions = tuple(lease_function_name(contract, str(owner)) for contract in LEASE_FUNCTIONS)
    found = [_read_region(region, provider, own_functions) for region, provider in regions.items()]
    missing: list[str] = []
    held: list[str] = []
    for region in found:
        fixed = region.held()
        absent = [label for label, tags in fixed.items() if tags is None]
        if absent:
            missing.append(f"{joined} has no setup in {region.name} to join: no {', no '.join(absent)}")
        held += [
            f"{label} in {region.name} is held by {_held_by(tags)}, not by {joined}, the stack joinStack names"
            for label, tags in fixed.items()
            if tags is not None and not joined.made(tags)
        ]
        own = {
            **region.held(own_functions, stacks=False),
            f"key pair {key_pair_name}": region.key_pair_tags(key_pair_name),
        }
        held += _conflicts(region, own, owner)
    remedy = (
        f"A joining stack uses what {joined} made in each of its regions: `pulumi up` that stack with every region "
        "this one lists first, or list here only regions it has; check that joinStack names it as its tags do "
        "(pulumi-project/pulumi-stack)."
    )
    _refuse(
        missing + held + [p for region in found for p in region.no_default_vpc()], remedy if missing or held else None
    )
    return {region.name: _shared_setup(region) for region in found}


# The IAM roles a stack makes in each region it sets up (held to its registrations by
# tests/components/test_role_quota.py): every user's two (the annex instances' and the lease
# functions'), the first user's one more (the connectivity function's), and two more where the stack
# builds the annex image (the build's and its cleanup function's).
USERS_ROLES, FIRST_USERS_ROLES, IMAGE_ROLES = 2, 1, 2
# Service Quotas' code for IAM's "Roles per account" (1,000 by default; IAM quotas page). IAM's
# quotas are global, and Service Quotas answers for them in us-east-1 only.
ROLES_QUOTA_CODE, GLOBAL_QUOTAS_REGION = "L-FE177D64", "us-east-1"


def roles_per_region(joins: bool, builds_images: bool) -> int:
    return USERS_ROLES + (0 if joins else FIRST_USERS_ROLES) + (IMAGE_ROLES if builds_images else 0)


def refuse_past_the_role_quota(
    added_regions: Sequence[str], joins: bool, builds_images: bool, provider: aws.Provider
) -> None:
    """Raises AccountConflict when the roles the up makes in the regions it adds would pass the
    account's role quota: IAM would refuse one with LimitExceeded part-way, after this user's bucket,
    key pair and other resources were made. An up that adds no region asks nothing."""
    per_region = roles_per_region(joins, builds_images)
    adds = per_region * len(added_regions)
    if not adds:
        return
    options = pulumi.InvokeOptions(provider=provider)

    def roles_quota() -> float:
        return aws.servicequotas.get_service_quota(
            service_code="iam", quota_code=ROLES_QUOTA_CODE, region=GLOBAL_QUOTAS_REGION, opts=options
        ).value

    held = len(
        _answer(lambda: aws.iam.get_roles(opts=options).names or [], "count the account's IAM roles", "iam:ListRoles")
    )
    quota = int(
        _answer(
            roles_quota, "read the account's IAM role quota", f"servicequotas:GetServiceQuota in {GLOBAL_QUOTAS_REGION}"
        )
    )
    if held + adds > quota:
        raise AccountConflict(
            f"this up makes {adds} IAM roles ({per_region} in each of {', '.join(added_regions)}), and the account "
            f"holds {held} of the {quota} its quota allows (Service Quotas: IAM, Roles per account, "
            f"{ROLES_QUOTA_CODE}): IAM would refuse one part-way through the up. Nothing was created. Ask AWS for a "
            "higher quota in the Service Quotas console, free roles, or list fewer regions"
        )
