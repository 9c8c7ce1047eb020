"""user_config knobs per version, read back through HTCondor's own parser."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from components.annex_client import AnnexKnobs, user_config_block, user_config_knobs
from components.contract import CondorRelease
from tests.harness import run_program

KNOBS = AnnexKnobs(
    region="us-east-1",
    bucket_name="annex-config-abc",
    security_group_id="sg-0123",
    odi_lease_arn="arn:aws:lambda:us-east-1:123456789012:function:HTCondorAnnex-odiLease",
    sfr_lease_arn="arn:aws:lambda:us-east-1:123456789012:function:HTCondorAnnex-sfrLease",
    instance_profile_arn="arn:aws:iam::123456789012:instance-profile/p",
    image_id="ami-0123456789abcdef0",
)


def parse(config_text: str, names: list[str], home: str, subsystem: str | None = None) -> dict[str, str | None]:
    """Read knobs with the htcondor wheel's real parser, in a fresh process (it reads at import), as
    a tool or as the given daemon subsystem (condor_annex is ANNEX)."""
    script = textwrap.dedent(
        """
        import json, sys, htcondor2
        if sys.argv[1]:
            htcondor2.set_subsystem(sys.argv[1], htcondor2.SubsystemType.Daemon)
            htcondor2.reload_config()
        print(json.dumps({name: htcondor2.param.get(name) for name in sys.argv[2:]}))
        """
    )
    with open(os.path.join(home, "condor_config"), "w") as config:
        config.write(config_text + "\n")
    env = {**os.environ, "CONDOR_CONFIG": os.path.join(home, "condor_config"), "HOME": home}
    result = subprocess.run(
        [sys.executable, "-c", script, subsystem or "", *names], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def in_region(region: str) -> AnnexKnobs:
    return AnnexKnobs(**{**KNOBS.__dict__, "region": region, "bucket_name": f"annex-config-{region}"})


def test_87_3_writes_unprefixed_knobs(tmp_path):
    release = CondorRelease("8.7.3")
    knobs = user_config_knobs(release, [KNOBS])
    assert "ANNEX_DEFAULT_S3_BUCKET" in knobs and "ANNEX_DEFAULT_AWS_REGION" not in knobs
    assert release.key_pair_file("us-east-1") == "HTCondorAnnex-KeyPair.pem"
    values = parse(user_config_block(release, [KNOBS]), list(knobs), str(tmp_path))
    assert values["ANNEX_DEFAULT_SECRET_KEY_FILE"] == f"{tmp_path}/.condor/privateKeyFile"
    assert values["ANNEX_DEFAULT_ODI_KEY_NAME"] == "HTCondorAnnex-KeyPair"


def test_87_3_reaches_its_region_through_the_endpoint_knobs(tmp_path):
    """Before 8.7.8 nothing names a region: the endpoints do, and theirs default to us-east-1."""
    release = CondorRelease("8.7.3")
    knobs = user_config_knobs(release, [in_region("eu-west-2")])
    values = parse(user_config_block(release, [in_region("eu-west-2")]), list(knobs), str(tmp_path))
    assert values["ANNEX_DEFAULT_EC2_URL"] == "https://ec2.eu-west-2.amazonaws.com"
    assert values["ANNEX_DEFAULT_CF_URL"] == "https://cloudformation.eu-west-2.amazonaws.com/"
    assert values["ANNEX_DEFAULT_S3_BUCKET"] == "annex-config-eu-west-2"
    assert not any("URL" in name for name in user_config_knobs(CondorRelease("8.7.8"), [KNOBS]))


def test_every_region_in_one_block_with_the_first_as_default(tmp_path):
    release = CondorRelease("25.0.13")
    regions = [in_region("eu-west-2"), in_region("us-east-1")]
    knobs = user_config_knobs(release, regions)
    block = user_config_block(release, regions)
    values = parse(block, list(knobs), str(tmp_path))
    assert values["ANNEX_DEFAULT_AWS_REGION"] == "eu-west-2"
    assert values["eu_west_2.ANNEX_DEFAULT_S3_BUCKET"] == "annex-config-eu-west-2"
    assert values["us_east_1.ANNEX_DEFAULT_S3_BUCKET"] == "annex-config-us-east-1"
    assert values["us_east_1.ANNEX_DEFAULT_SECRET_KEY_FILE"] == f"{tmp_path}/.condor/privateKeyFile"
    assert "HTCondorAnnex-KeyPair.eu-west-2.pem" in block and "HTCondorAnnex-KeyPair.us-east-1.pem" in block


@pytest.mark.parametrize("version", ["8.7.8", "8.9.9"])
def test_region_prefixed_knobs_without_region_knob(version: str):
    knobs = user_config_knobs(CondorRelease(version), [KNOBS])
    assert "us_east_1.ANNEX_DEFAULT_S3_BUCKET" in knobs and "ANNEX_DEFAULT_AWS_REGION" not in knobs


def test_24_0_writes_prefixed_knobs_and_region(tmp_path):
    release = CondorRelease("24.0.23")
    knobs = user_config_knobs(release, [KNOBS])
    assert knobs["ANNEX_DEFAULT_AWS_REGION"] == "us-east-1"
    assert release.key_pair_file("us-east-1") == "HTCondorAnnex-KeyPair.us-east-1.pem"
    values = parse(user_config_block(release, [KNOBS]), list(knobs), str(tmp_path))
    assert values["us_east_1.ANNEX_DEFAULT_S3_BUCKET"] == "annex-config-abc"
    assert values["us_east_1.ANNEX_DEFAULT_ODI_IMAGE_ID"] == "ami-0123456789abcdef0"
    assert values["us_east_1.ANNEX_DEFAULT_ACCESS_KEY_FILE"] == f"{tmp_path}/.condor/publicKeyFile"


def test_safe_region_prefix():
    knobs = user_config_knobs(CondorRelease("24.0.23"), [in_region("us-gov-west-1")])
    assert "us_gov_west_1.ANNEX_DEFAULT_S3_BUCKET" in knobs


def test_stack_outputs_name_every_path():
    outputs = {name: output.value for name, output in run_program().outputs.items()}
    assert outputs["userConfigFile"] == "~/.condor/user_config"
    assert outputs["accessKeyFile"] == "~/.condor/publicKeyFile"
    assert outputs["secretKeyFile"] == "~/.condor/privateKeyFile"
    assert outputs["keyPairFile"] == "~/.condor/HTCondorAnnex-KeyPair.us-east-1.pem"
    assert outputs["condorSh"] == "~/condor-25.0.13/condor.sh"
    assert outputs["poolPasswordFile"] == "~/condor-25.0.13/local/passwords.d/POOL"
    assert outputs["userConfigKnobs"]["us_east_1.ANNEX_DEFAULT_S3_BUCKET"] == outputs["bucketName"]
