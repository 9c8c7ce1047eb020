"""Several regions from one stack: each region's resources through its own provider, the rest once."""

from __future__ import annotations

import json

import pytest

from components.settings import ConfigError
from tests.harness import Program, run_program

TWO = {"condor-annex:regions": '["eu-west-2", "us-east-1"]'}
REGION_STEPS = ("annex-key-pair-{}-make", "annex-client-check-setup-{}")


@pytest.fixture(scope="module")
def two_regions() -> Program:
    return run_program(TWO)


def region_of_name(name: str) -> str | None:
    return next((region for region in ("eu-west-2", "us-east-1") if f"-{region}" in name), None)


def test_every_aws_resource_is_made_by_an_explicit_provider_of_its_region(two_regions: Program):
    aws = [r for r in two_regions.registrations if r.type.startswith("aws:")]
    assert aws and all(r.region for r in aws), "no AWS resource may fall to the default provider"
    for resource in aws:
        if resource.name.startswith("annex-user"):
            # IAM is global: the annex user and its policies, one per region, go through the account's
            # provider, in the first region of the stack's first up.
            assert resource.region == "eu-west-2" and resource.provider.endswith("::aws-account"), resource.name
            continue
        assert resource.region == region_of_name(resource.name), f"{resource.name} is made in {resource.region}"
    aws_calls = [region for token, region in two_regions.calls if token.startswith("aws:")]
    assert set(aws_calls) == {"eu-west-2", "us-east-1"}


def test_names_aws_scopes_per_region_are_kept_in_each(two_regions: Program):
    for region in ("eu-west-2", "us-east-1"):
        stacks = {r.inputs["name"] for r in two_regions.of_type("aws:cloudformation/stack:Stack") if r.region == region}
        assert stacks == {
            "HTCondorAnnex-ConfigurationBucket",
            "HTCondorAnnex-LambdaFunctions",
            "HTCondorAnnex-InstanceProfile",
            "HTCondorAnnex-SecurityGroup",
        }
        functions = two_regions.of_type("aws:lambda/function:Function")
        functions = {r.inputs.get("name") for r in functions if r.region == region}
        assert "HTCondorAnnex-CheckConnectivity" in functions
        (key_pair,) = [r for r in two_regions.of_type("aws:ec2/keyPair:KeyPair") if r.region == region]
        assert key_pair.inputs["keyName"] == "HTCondorAnnex-KeyPair"


def test_account_wide_and_machine_wide_things_once(two_regions: Program):
    for kind in ("aws:iam/user:User", "aws:iam/accessKey:AccessKey", "aws:iam/userPolicy:UserPolicy"):
        assert len(two_regions.of_type(kind)) == 1, kind
    steps = two_regions.commands()
    for once in ("personal-condor-install", "personal-condor-start", "annex-client-user-config"):
        assert once in steps
    for region in ("eu-west-2", "us-east-1"):
        for step in REGION_STEPS:
            assert step.format(region) in steps


def test_each_region_is_checked_by_name_and_has_its_pem(two_regions: Program):
    steps = two_regions.commands()
    for region in ("eu-west-2", "us-east-1"):
        check = steps[f"annex-client-check-setup-{region}"]["create"]
        assert f"htcondor annex checksetup --aws-region {region}" in check
        assert f"KEY_PAIR_FILE=HTCondorAnnex-KeyPair.{region}.pem" in steps[f"annex-key-pair-{region}-make"]["create"]
    block = steps["annex-client-user-config"]["create"]
    assert "ANNEX_DEFAULT_AWS_REGION = eu-west-2" in block
    assert "eu_west_2.ANNEX_DEFAULT_S3_BUCKET" in block and "us_east_1.ANNEX_DEFAULT_S3_BUCKET" in block


def test_outputs_per_region_and_the_old_names_for_the_first(two_regions: Program):
    outputs = {name: output.value for name, output in two_regions.outputs.items()}
    assert outputs["regions"] == ["eu-west-2", "us-east-1"] and outputs["region"] == "eu-west-2"
    assert set(outputs["byRegion"]) == {"eu-west-2", "us-east-1"}
    first = outputs["byRegion"]["eu-west-2"]
    for name, value in first.items():
        assert outputs[name] == value, name
    assert first["keyPairFile"] == "~/.condor/HTCondorAnnex-KeyPair.eu-west-2.pem"
    assert ":eu-west-2:" in first["odiLeaseFunctionArn"]
    assert ":us-east-1:" in outputs["byRegion"]["us-east-1"]["odiLeaseFunctionArn"]
    assert outputs["byRegion"]["us-east-1"]["bucketName"] != first["bucketName"]


def changed(before: Program, after: Program) -> list[str]:
    return sorted(set(after.changed_from(before, "aws:")) | set(after.changed_from(before, "command:")))


def test_adding_or_removing_a_region_touches_only_that_region_and_the_client_steps(two_regions: Program):
    """What `pulumi up` would create, update or delete when eu-west-2 is added to or removed from us-east-1."""
    one = run_program({"condor-annex:regions": '["us-east-1"]'})
    three = run_program({"condor-annex:regions": '["us-east-1", "eu-west-2"]'})
    for before, after in ((one, three), (three, one)):
        touched = changed(before, after)
        others = [name for name in touched if region_of_name(name) != "eu-west-2"]
        # The images block names every region's image; the guard asks about annexes in every region.
        assert others == ["annex-client-images", "annex-client-user-config", "annex-guard"], others
        assert {"annex-user-eu-west-2", "annex-user-eu-west-2-attachment"} <= set(touched)
        assert "annex-key-pair-eu-west-2-make" in touched and "annex-client-check-setup-eu-west-2" in touched


def test_8_7_x_sets_up_its_one_region_without_a_region_option():
    program = run_program({"condor-annex:regions": '["eu-west-2"]', "condor-annex:condorVersion": "8.7.3"})
    steps = program.commands()
    check = steps["annex-client-check-setup-eu-west-2"]["create"]
    assert "condor_annex -check-setup" in check and "aws-region" not in check
    assert "KEY_PAIR_FILE=HTCondorAnnex-KeyPair.pem" in steps["annex-key-pair-eu-west-2-make"]["create"]
    assert "ANNEX_DEFAULT_EC2_URL = https://ec2.eu-west-2.amazonaws.com" in steps["annex-client-user-config"]["create"]


def account_wide(program: Program) -> dict[str, str]:
    """Each account-wide resource's URN -> the provider it goes through, and that provider's region."""
    return {
        r.urn: f"{r.provider} in {r.region}"
        for r in program.registrations
        if r.type.startswith("aws:iam/") and r.name.startswith("annex-user")
    }


@pytest.mark.parametrize(
    "regions_now",
    [
        ["us-east-1", "eu-west-2"],
        ["us-east-1"],
        ["ca-central-1", "us-east-1"],
        ["us-east-1", "eu-west-2", "ap-south-1"],
    ],
    ids=["reordered", "first dropped", "first swapped", "one added"],
)
def test_no_change_of_regions_moves_the_annex_user_its_key_or_another_regions_resources(
    two_regions: Program, regions_now: list[str]
):
    """The registrations an up compares with the stack's state: the same URN and the same provider
    (hence no DiffConfig, no replacement) for every resource of the account and of every region kept."""
    last_up = {"regions": ["eu-west-2", "us-east-1"], "region": "eu-west-2", "accountRegion": "eu-west-2"}
    now = run_program({"condor-annex:regions": json.dumps(regions_now)}, previous_outputs=last_up)
    before, after = account_wide(two_regions), account_wide(now)
    kept_regions = [region for region in regions_now if region in last_up["regions"]]
    # Only the policies of regions dropped go, and of regions added come.
    assert {urn: where for urn, where in after.items() if urn in before} == {
        urn: where for urn, where in before.items() if urn in after
    }
    assert all(f"annex-user-{r}" in " ".join(after) for r in regions_now)
    assert now.outputs["accountRegion"].value == "eu-west-2"
    for region in kept_regions:
        then = {r.urn: (r.provider, r.inputs) for r in two_regions.registrations if r.region == region}
        again = {r.urn: (r.provider, r.inputs) for r in now.registrations if r.region == region and r.urn in then}
        assert {urn for urn in then if "annex-user" not in urn} <= set(again), region
        assert all(again[urn][0] == then[urn][0] for urn in again), region


TEN = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1",
       "ap-south-1", "ap-northeast-1"]  # fmt: skip


def test_swapping_a_region_at_ten_is_refused_before_anything_naming_the_two_ups():
    """IAM attaches at most 10 managed policies to a user (IAM quotas: "Managed policies attached to
    an IAM user"), and an up attaches the new region's before it detaches the old one's."""
    swapped = [*TEN[:-1], "ca-central-1"]
    program = Program()
    with pytest.raises(ConfigError) as refused:
        run_program({"condor-annex:regions": json.dumps(swapped)}, previous_outputs={"regions": TEN}, into=program)
    assert program.registrations == []
    message = str(refused.value)
    assert "condor-annex:regions adds ca-central-1 while ap-northeast-1" in message
    assert "11 managed policies" in message and "Drop ap-northeast-1 from regions" in message
    # The two ups it names each pass.
    assert run_program({"condor-annex:regions": json.dumps(TEN[:-1])}, previous_outputs={"regions": TEN})
    assert run_program({"condor-annex:regions": json.dumps(swapped)}, previous_outputs={"regions": TEN[:-1]})


def test_a_stack_from_before_account_region_keeps_its_first_region_for_the_account():
    now = run_program(
        {"condor-annex:regions": '["us-east-1"]'}, previous_outputs={"regions": ["eu-west-2"], "region": "eu-west-2"}
    )
    assert set(account_wide(now).values()) == {
        "urn:pulumi:test::condor-annex::pulumi:pulumi:Stack$pulumi:providers:aws::aws-account in eu-west-2"
    }
