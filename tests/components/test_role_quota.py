"""A stack that would pass the account's IAM role quota is refused before any AWS resource, with the
figures; an up that adds no region asks nothing; the roles counted are the roles the program makes."""

from __future__ import annotations

import json

import pytest

from components.account import AccountConflict, roles_per_region
from components.settings import PROJECT
from tests.harness import JOIN, AccountIam, Program, RegionHolds, first_users_setup, run_program

REGIONS = ["us-east-1", "eu-west-2"]
JOINING = {region: first_users_setup() for region in REGIONS}
WITH_AN_IMAGE_OF_ONES_OWN = {f"{PROJECT}:annexImageId": "ami-0123456789abcdef0"}
SHAPES = {
    "first user, image built": ({}, {}),
    "first user, own image": (WITH_AN_IMAGE_OF_ONES_OWN, {}),
    "joining user, image built": (JOIN, JOINING),
    "joining user, own image": ({**JOIN, **WITH_AN_IMAGE_OF_ONES_OWN}, JOINING),
}


def regions_config(regions: list[str]) -> dict[str, str]:
    return {f"{PROJECT}:regions": json.dumps(regions)}


@pytest.mark.parametrize("shape", SHAPES)
def test_the_roles_counted_are_the_roles_the_program_registers(shape: str):
    config, account = SHAPES[shape]
    program = run_program({**config, **regions_config(REGIONS)}, account=account)
    per_region = roles_per_region(joins="joining" in shape, builds_images="built" in shape)
    assert len(program.of_type("aws:iam/role:Role")) == per_region * len(REGIONS)


def refused(
    iam: AccountIam,
    config: dict[str, str],
    account: dict[str, RegionHolds] | None = None,
    previous_outputs: dict[str, list[str]] | None = None,
) -> str:
    program = Program()
    with pytest.raises(AccountConflict) as raised:
        run_program(config, into=program, account=account, iam=iam, previous_outputs=previous_outputs)
    made = [r.name for r in program.registrations if r.type.startswith(("aws:", "command:"))]
    assert made == ["preflight"], f"{made} registered before the refusal; only the read-only preflight may be"
    return str(raised.value)


def test_a_joining_user_past_the_role_quota_is_refused_before_anything_is_made_and_one_within_it_goes_on():
    config = {**JOIN, **regions_config(REGIONS)}
    adds = roles_per_region(joins=True, builds_images=True) * len(REGIONS)
    message = refused(AccountIam(roles=1_000 - adds + 1), config, JOINING)
    assert f"this up makes {adds} IAM roles (4 in each of us-east-1, eu-west-2)" in message
    assert f"holds {1_000 - adds + 1} of the 1000 its quota allows" in message and "L-FE177D64" in message
    assert "Nothing was created" in message and "list fewer regions" in message
    run_program(config, account=JOINING, iam=AccountIam(roles=1_000 - adds))


def test_a_quota_the_account_raised_is_the_one_that_counts():
    run_program(regions_config(REGIONS), iam=AccountIam(roles=1_500, roles_quota=2_000))
    refused(AccountIam(roles=1_000, roles_quota=1_000), regions_config(REGIONS))


def test_an_up_counts_only_the_regions_it_adds_and_one_adding_none_asks_nothing():
    again = run_program(regions_config(REGIONS), iam=AccountIam(roles=1_000), previous_outputs={"regions": REGIONS})
    asked = [token for token, _ in again.calls if token.startswith(("aws:iam/getRoles", "aws:servicequotas"))]
    assert asked == []
    per_region = roles_per_region(joins=False, builds_images=True)
    adding_one = regions_config([*REGIONS, "us-west-2"])
    before = {"regions": REGIONS}
    run_program(adding_one, iam=AccountIam(roles=1_000 - per_region), previous_outputs=before)
    message = refused(AccountIam(roles=1_000 - per_region + 1), adding_one, previous_outputs=before)
    assert f"makes {per_region} IAM roles ({per_region} in each of us-west-2)" in message


@pytest.mark.parametrize(
    "token, permission",
    [
        ("aws:iam/getRoles:getRoles", "iam:ListRoles"),
        ("aws:servicequotas/getServiceQuota:getServiceQuota", "servicequotas:GetServiceQuota in us-east-1"),
    ],
)
def test_a_read_the_deployer_may_not_make_stops_the_up_naming_the_permission(token: str, permission: str):
    denied = f"operation error: https response error StatusCode: 403, api error AccessDenied: not authorized ({token})"
    message = refused(AccountIam(), {}, {"us-east-1": RegionHolds(errors={token: denied})})
    assert "AccessDenied" in message and f"The deployer's AWS credentials need {permission}" in message
