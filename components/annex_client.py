"""AnnexClient: the local half of `condor_annex -setup`, on the Linux machine, over SSH."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import pulumi

from components.contract import ACCESS_KEY_FILE, KEY_PAIR_NAME, SECRET_KEY_FILE, CondorRelease, safe_region
from components.machine import Machine, Step, machine_step

CONDOR_DIR = "~/.condor"
# AWS takes seconds to accept a new access key; -check-setup is asked again for this long.
NEW_KEY_WAIT_SECONDS = 90
# HTCondor expands $ENV(HOME) itself, so the knobs hold absolute paths without us knowing $HOME.
CONDOR_DIR_IN_CONFIG = "$ENV(HOME)/.condor"
# 8.7.1-8.7.7 reach AWS at these URLs, whose defaults are us-east-1's (param_info.in at V8_7_3,
# written in the same form).
ENDPOINT_KNOBS = {
    "ANNEX_DEFAULT_EC2_URL": "https://ec2.{region}.amazonaws.com",
    "ANNEX_DEFAULT_CWE_URL": "https://events.{region}.amazonaws.com",
    "ANNEX_DEFAULT_LAMBDA_URL": "https://lambda.{region}.amazonaws.com",
    "ANNEX_DEFAULT_S3_URL": "https://s3.{region}.amazonaws.com",
    "ANNEX_DEFAULT_CF_URL": "https://cloudformation.{region}.amazonaws.com/",
}


@dataclass
class AnnexKnobs:
    """The values `condor_annex -setup` would have written, from the AWS side's outputs."""

    region: str
    bucket_name: str
    security_group_id: str
    odi_lease_arn: str
    sfr_lease_arn: str
    instance_profile_arn: str
    image_id: str | None = None
    instance_type: str | None = None
    key_pair_name: str = KEY_PAIR_NAME


def user_config_knobs(release: CondorRelease, regions: list[AnnexKnobs]) -> dict[str, str]:
    """knob name (with its region prefix where the version wants one) -> value, for every region;
    the first region is the default one."""
    prefixed: dict[str, str] = {}
    for knobs in regions:
        prefix = f"{safe_region(knobs.region)}." if release.region_prefixed_knobs else ""
        prefixed |= {f"{prefix}{name}": value for name, value in _region_knobs(release, knobs).items()}
    if release.writes_region_knob:
        prefixed["ANNEX_DEFAULT_AWS_REGION"] = regions[0].region
    return prefixed


def _region_knobs(release: CondorRelease, knobs: AnnexKnobs) -> dict[str, str]:
    values = {
        "ANNEX_DEFAULT_ACCESS_KEY_FILE": f"{CONDOR_DIR_IN_CONFIG}/{ACCESS_KEY_FILE}",
        "ANNEX_DEFAULT_SECRET_KEY_FILE": f"{CONDOR_DIR_IN_CONFIG}/{SECRET_KEY_FILE}",
        "ANNEX_DEFAULT_S3_BUCKET": knobs.bucket_name,
        "ANNEX_DEFAULT_ODI_SECURITY_GROUP_IDS": knobs.security_group_id,
        "ANNEX_DEFAULT_ODI_LEASE_FUNCTION_ARN": knobs.odi_lease_arn,
        "ANNEX_DEFAULT_SFR_LEASE_FUNCTION_ARN": knobs.sfr_lease_arn,
        "ANNEX_DEFAULT_ODI_INSTANCE_PROFILE_ARN": knobs.instance_profile_arn,
        "ANNEX_DEFAULT_ODI_KEY_NAME": knobs.key_pair_name,
    }
    if knobs.image_id:
        values["ANNEX_DEFAULT_ODI_IMAGE_ID"] = knobs.image_id
    if knobs.instance_type:
        values["ANNEX_DEFAULT_ODI_INSTANCE_TYPE"] = knobs.instance_type
    if not release.region_prefixed_knobs:
        # Before 8.7.8 the endpoints are the only way to a region.
        values |= {knob: url.format(region=knobs.region) for knob, url in ENDPOINT_KNOBS.items()}
    return values


def image_knobs(release: CondorRelease, images: dict[str, str]) -> dict[str, str]:
    """The images this stack built, one knob a region (prefixed: built images need 10.5 or later)."""
    return {f"{safe_region(region)}.ANNEX_DEFAULT_ODI_IMAGE_ID": image for region, image in images.items()}


def knobs_digest(release: CondorRelease, knobs: AnnexKnobs) -> str:
    return hashlib.sha256(json.dumps(_region_knobs(release, knobs), sort_keys=True).encode()).hexdigest()[:16]


def user_config_block(release: CondorRelease, regions: list[AnnexKnobs]) -> str:
    lines = [f"{name} = {value}" for name, value in user_config_knobs(release, regions).items()]
    logins = [
        f"# ssh -i {CONDOR_DIR_IN_CONFIG}/{release.key_pair_file(knobs.region)} ec2-user@<annex instance address>"
        + (f" (in {knobs.region})" if len(regions) > 1 else "")
        for knobs in regions
    ]
    return "\n".join([*lines, *logins])


@dataclass
class AnnexClientArgs:
    machine: Machine
    release: CondorRelease
    install_dir: str
    # Each region's knobs, the default region first.
    knobs: dict[str, pulumi.Output[AnnexKnobs]]
    access_key_id: pulumi.Input[str]
    secret_access_key: pulumi.Input[str]
    condor_dir: pulumi.Resource
    condor_ready: pulumi.Resource
    # What each region's check waits for on AWS.
    aws_ready: dict[str, list[pulumi.Resource]]
    # The annex images this stack builds, by region, and the builds (nothing else waits for them).
    built_images: dict[str, pulumi.Output[str]] = field(default_factory=dict)
    image_builds: list[pulumi.Resource] = field(default_factory=list)


class AnnexClient(pulumi.ComponentResource):
    """Key files, the user_config block, and the user's own check of each region's setup."""

    access_key_file: str
    secret_key_file: str
    user_config_file: str
    # Each region's check of its setup, and the built images' knobs: the client side's last steps.
    last: list[pulumi.Resource]

    def __init__(self, name: str, args: AnnexClientArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("condor-annex:machine:AnnexClient", name, None, opts)
        release = args.release

        key_files = machine_step(
            args.machine,
            Step(
                name=f"{name}-key-files",
                script="key_files.sh",
                values={"ACCESS_KEY_FILE": ACCESS_KEY_FILE, "SECRET_KEY_FILE": SECRET_KEY_FILE},
                stdin=pulumi.Output.secret(
                    pulumi.Output.format("{0}\n{1}\n", args.access_key_id, args.secret_access_key)
                ),
                depends_on=[args.condor_dir],
            ),
            parent=self,
        )
        user_config = machine_step(
            args.machine,
            Step(
                name=f"{name}-user-config",
                script="user_config.sh",
                values={
                    "USER_CONFIG_BLOCK": pulumi.Output.all(*args.knobs.values()).apply(
                        lambda regions: user_config_block(release, regions)
                    ),
                    "BLOCK_NAME": "",
                },
                depends_on=[key_files],
            ),
            parent=self,
        )
        self.last = []
        if args.built_images:
            self.last.append(
                machine_step(
                    args.machine,
                    Step(
                        name=f"{name}-images",
                        script="user_config.sh",
                        values={
                            "USER_CONFIG_BLOCK": pulumi.Output.all(**args.built_images).apply(
                                lambda images: "\n".join(f"{k} = {v}" for k, v in image_knobs(release, images).items())
                            ),
                            "BLOCK_NAME": "images",
                        },
                        depends_on=[user_config, *args.image_builds],
                    ),
                    parent=self,
                )
            )
        for region, aws_ready in args.aws_ready.items():
            check = machine_step(
                args.machine,
                Step(
                    name=f"{name}-check-setup-{region}",
                    script="check_setup.sh",
                    values={
                        "INSTALL_DIR": args.install_dir,
                        "CHECK_SETUP_COMMAND": release.check_setup_command(region),
                        # Checked again when this region's knobs change or the key does, and only then.
                        "KNOBS_DIGEST": args.knobs[region].apply(lambda knobs: knobs_digest(release, knobs)),
                        "ACCESS_KEY_ID": args.access_key_id,
                        "KEY_WAIT": str(NEW_KEY_WAIT_SECONDS),
                    },
                    depends_on=[key_files, user_config, args.condor_ready, *aws_ready],
                ),
                parent=self,
            )
            self.last.append(check)

        self.access_key_file = f"{CONDOR_DIR}/{ACCESS_KEY_FILE}"
        self.secret_key_file = f"{CONDOR_DIR}/{SECRET_KEY_FILE}"
        self.user_config_file = f"{CONDOR_DIR}/user_config"
        self.register_outputs(
            {
                "access_key_file": self.access_key_file,
                "secret_key_file": self.secret_key_file,
                "user_config_file": self.user_config_file,
            }
        )
