"""The annex image the stack builds per region, as registered; tests/e2e/test_annex.py runs its steps."""

from __future__ import annotations

import json

import pytest

from components.annex_image import IMAGE_BUILDER_MANAGED_POLICIES, PACKAGES
from components.contract import IMAGE_BASE_PARAMETER, IMAGE_PLATFORM
from tests.harness import Program, policy, run_program, statements_by_sid

P = "condor-annex"
SHA256 = "a753794bc24e3be0a173e73c7902d1ff13bbd249218fda3908bf268942fce5e0"


@pytest.fixture(scope="module")
def two_regions() -> Program:
    return run_program({f"{P}:regions": '["us-east-1", "eu-west-2"]', f"{P}:annexImageTarballSha256": SHA256})


def steps(program: Program, region: str) -> dict[str, str]:
    document = json.loads(program.named(f"annex-image-{region}-htcondor").inputs["data"])
    return {
        f"{phase['name']}/{step['name']}": "\n".join(step["inputs"]["commands"])
        for phase in document["phases"]
        for step in phase["steps"]
    }


def test_each_region_builds_the_pools_release_for_amazon_linux_2023(two_regions: Program):
    for region in ("us-east-1", "eu-west-2"):
        built = steps(two_regions, region)
        assert list(built) == ["build/InstallPackages", "build/InstallHTCondor", "validate/HTCondorStarts"]
        assert built["build/InstallPackages"] == PACKAGES
        install = built["build/InstallHTCondor"]
        url = f"https://htcss-downloads.chtc.wisc.edu/tarball/25.0/25.0.13/release/condor-25.0.13-{IMAGE_PLATFORM}-stripped.tar.gz"
        assert f"TARBALL_URL={url}\n" in install and f"TARBALL_SHA256={SHA256}\n" in install
        assert "CONDOR_VERSION=25.0.13\n" in built["validate/HTCondorStarts"]
        recipe = two_regions.named(f"annex-image-{region}-recipe")
        assert recipe.inputs["parentImage"] == f"ssm:{IMAGE_BASE_PARAMETER}" and recipe.region == region
        (distribution,) = two_regions.named(f"annex-image-{region}-distribution").inputs["distributions"]
        assert distribution["region"] == region
        assert distribution["amiDistributionConfiguration"]["amiTags"]["pulumi-stack"] == "test"
        image = two_regions.named(f"annex-image-{region}")
        assert image.inputs["imageTestsConfiguration"] == {"imageTestsEnabled": False}


def test_the_build_instance_holds_what_image_builder_documents(two_regions: Program):
    attached = {
        r.inputs["policyArn"]
        for r in two_regions.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r.region == "us-east-1"
    }
    assert attached == {f"arn:aws:iam::aws:policy/{name}" for name in IMAGE_BUILDER_MANAGED_POLICIES}
    infrastructure = two_regions.named("annex-image-us-east-1-build")
    assert infrastructure.inputs["terminateInstanceOnFailure"] is True


def test_the_images_are_named_in_user_config_and_the_outputs_and_nothing_waits_for_them(two_regions: Program):
    images = {
        region: two_regions.outputs["byRegion"].value[region]["annexImageId"] for region in ("us-east-1", "eu-west-2")
    }
    assert all(image.startswith("ami-") for image in images.values())
    block = two_regions.named("annex-client-images").inputs["create"]
    for region, image in images.items():
        assert f"{region.replace('-', '_')}.ANNEX_DEFAULT_ODI_IMAGE_ID = {image}" in block
        assert (
            two_regions.outputs["userConfigKnobs"].value[f"{region.replace('-', '_')}.ANNEX_DEFAULT_ODI_IMAGE_ID"]
            == image
        )
    # A build takes half an hour: the setup's own block and each region's check go on without it.
    image_urns = {
        leaf.urn
        for r in two_regions.of_type("condor-annex:aws:AnnexImage")
        for leaf in two_regions.resources_under(r.urn)
    }
    for step in ("annex-client-user-config", "annex-client-check-setup-us-east-1"):
        chain = {r.urn for r in two_regions.longest_chain(two_regions.named(step))}
        assert not chain & image_urns, f"{step} waits for an image build"
    assert "ANNEX_DEFAULT_ODI_IMAGE_ID" not in two_regions.named("annex-client-user-config").inputs["create"]
    assert two_regions.outputs["userConfigKnobs"].value["us_east_1.ANNEX_DEFAULT_ODI_INSTANCE_TYPE"] == "m5.large"


def test_a_given_image_is_used_and_nothing_is_built():
    program = run_program({f"{P}:annexImageId": "ami-0123456789abcdef0"})
    assert not program.of_type("aws:imagebuilder/image:Image")
    assert (
        "us_east_1.ANNEX_DEFAULT_ODI_IMAGE_ID = ami-0123456789abcdef0"
        in program.named("annex-client-user-config").inputs["create"]
    )
    assert "annex-client-images" not in program.commands()
    assert program.outputs["annexImageId"].value == "ami-0123456789abcdef0"


def test_a_release_with_no_tarball_for_the_image_builds_nothing_and_says_so():
    program = run_program({f"{P}:condorVersion": "10.0.9"})
    assert not program.of_type("aws:imagebuilder/image:Image")
    warning = next(line for line in program.logs if "annexImageId" in line)
    assert warning.startswith("warning:") and "10.0.9 has no x86_64_AmazonLinux2023 tarball" in warning


def test_the_image_goes_with_its_snapshots_on_destroy(two_regions: Program):
    """Image Builder leaves the AMI it made; the cleanup function deregisters it, invoked on every
    lifecycle event, and may deregister only images this stack's builds tagged."""
    invocation = two_regions.named("annex-image-us-east-1-cleanup-invocation")
    assert invocation.inputs["lifecycleScope"] == "CRUD"
    image = two_regions.outputs["byRegion"].value["us-east-1"]["annexImageId"]
    assert json.loads(invocation.inputs["input"]) == {"images": [image]}
    function = two_regions.named("annex-image-us-east-1-cleanup")
    assert function.inputs["handler"] == "image_cleanup.handler"
    statements = statements_by_sid(policy(two_regions.named("annex-image-us-east-1-cleanup-policy")))
    deregister = statements["DeregisterOwnImages"]
    assert deregister["Resource"] == "arn:aws:ec2:us-east-1::image/*"
    assert deregister["Condition"] == {
        "StringEquals": {"aws:ResourceTag/pulumi-project": "condor-annex", "aws:ResourceTag/pulumi-stack": "test"}
    }
    assert statements["DeleteImageSnapshots"]["Resource"] == "arn:aws:ec2:us-east-1::snapshot/*"
