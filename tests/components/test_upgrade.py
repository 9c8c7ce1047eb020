"""A stack made before `regions` existed is updated in place: every resource it holds is taken over
by the resource of the same job now, through its URN or an alias, so `pulumi up` replaces nothing
(a replacement would collide with the HTCondorAnnex-* names the old resource still holds).

The engine's rules, from pulumi v3.274.1 (read: `sdk/go/common/resource/alias.go` CreateURN,
`pkg/resource/deploy/step_generator.go` getOldResource, generateAliases, inheritedChildAlias):
a URN's type part is the chain of its ancestors' types without the root stack's; a resource is
matched by its URN first, then by its aliases in order; a child whose parent was matched through
an alias also gets that alias with the parent's name, where it prefixes the child's, replaced by
the alias's. The aliases a resource declares itself are turned into URNs by the Python SDK.
"""

from __future__ import annotations

from pathlib import Path

from tests.harness import Program, Registration, run_program

STACK = "urn:pulumi:test::condor-annex::"
BEFORE = [
    line
    for line in (Path(__file__).parent / "urns_before_regions.txt").read_text().splitlines()
    if not line.startswith("#")
]
# One check per region now, under a new name; the old check's delete does nothing.
RENAMED_ON_PURPOSE = {f"{STACK}condor-annex:machine:AnnexClient$command:remote:Command::annex-client-check-setup"}
# New since: the first region's managed policy for the annex user (the inline policy grew past
# IAM's 2,048 characters) and its attachment. Pulumi names both, so neither can collide.
NEW_ON_PURPOSE = [
    f"{STACK}condor-annex:aws:AnnexRegion$condor-annex:aws:LeaseFunctions$aws:lambda/invocation:Invocation::annex-us-east-1-functions-odiLease-teardown",
    f"{STACK}condor-annex:aws:AnnexRegion$condor-annex:aws:LeaseFunctions$aws:lambda/invocation:Invocation::annex-us-east-1-functions-sfrLease-teardown",
    f"{STACK}condor-annex:aws:AnnexUser$aws:iam/policy:Policy::annex-user-us-east-1",
    f"{STACK}condor-annex:aws:AnnexUser$aws:iam/userPolicyAttachment:UserPolicyAttachment::annex-user-us-east-1-attachment",
]


def engine_urn(program: Program, registration: Registration) -> str:
    types = []
    current: Registration | None = registration
    while current is not None:
        types.append(current.type)
        current = next((r for r in program.registrations if r.urn == current.parent), None)
    return f"{STACK}{'$'.join(reversed(types))}::{registration.name}"


def inherited_alias(registration: Registration, parent: Registration, parent_alias: str) -> str:
    name = registration.name
    if name.startswith(parent.name):
        name = parent_alias.rsplit("::", 1)[1] + name[len(parent.name) :]
    parent_types = parent_alias[len(STACK) :].rsplit("::", 1)[0]
    return f"{STACK}{parent_types}${registration.type}::{name}"


def takeovers(program: Program, olds: set[str]) -> dict[str, str]:
    """old URN -> the engine URN of the resource now that the engine matches to it."""
    matched_by: dict[str, str] = {}  # a resource's mock URN -> the old URN it matched
    taken: dict[str, str] = {}
    for registration in program.registrations:  # parents register before their children
        own = engine_urn(program, registration)
        candidates = [own, *registration.aliases]
        parent = next((r for r in program.registrations if r.urn == registration.parent), None)
        if parent is not None and parent.urn in matched_by and matched_by[parent.urn] != engine_urn(program, parent):
            candidates.append(inherited_alias(registration, parent, matched_by[parent.urn]))
        old = next((candidate for candidate in candidates if candidate in olds), None)
        if old is not None:
            assert old not in taken, f"{old} is claimed by {taken[old]} and {own}"
            matched_by[registration.urn] = old
            taken[old] = own
    return taken


def test_every_resource_of_a_stack_made_before_regions_is_taken_over_in_place():
    program = run_program(resolve_aliases=True)
    taken = takeovers(program, set(BEFORE))
    assert set(BEFORE) - set(taken) == RENAMED_ON_PURPOSE
    new_aws = [engine_urn(program, r) for r in program.registrations if r.type.startswith("aws:")]
    # The annex image is new to such a stack: built on its first up, as on any other's.
    image = {urn for urn in new_aws if "condor-annex:aws:AnnexImage$" in urn}
    assert f"{STACK}condor-annex:aws:AnnexImage$aws:imagebuilder/image:Image::annex-image-us-east-1" in image
    new = set(new_aws) - set(taken.values()) - image
    assert sorted(new) == NEW_ON_PURPOSE, "an AWS resource would be created anew"


def test_a_second_region_takes_over_nothing():
    program = run_program({"condor-annex:regions": '["us-east-1", "eu-west-2"]'}, resolve_aliases=True)
    taken = takeovers(program, set(BEFORE))
    assert not [urn for urn in taken.values() if "eu-west-2" in urn]
