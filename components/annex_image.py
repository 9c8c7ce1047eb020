"""AnnexImage: an image annex instances boot from and join the pool with, built in the region by EC2
Image Builder (as ParallelCluster's `pcluster build-image` builds its images) from Amazon Linux
2023 and the pool's own HTCondor release.

condor_annex can give an instance nothing but an image: it passes user data only from its own
command line, and `htcondor annex create` passes none (annex_create.py at v25.0.13), so the image
holds the release, HTCondor's own boot script and the units that run it. HTCondor's only default
images are of 2019-2020, for releases whose annex configuration a 24.11+ pool cannot use.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.contract import IMAGE_BASE_PARAMETER, CondorRelease
from components.lambdas import RUNTIME, lambda_archive
from components.policy import document, trust

IMAGE_SCRIPTS = Path(__file__).resolve().parent / "image"
# What the build steps need beyond Amazon Linux 2023's own image: iptables for the boot script's
# rule that keeps non-root processes off the metadata service (AL2023 ships nftables alone).
PACKAGES = "dnf install -y iptables-nft tar gzip"
# Small and in every region; the build only downloads and unpacks a tarball.
BUILD_INSTANCE_TYPES = ["t3.small", "m5.large"]
# A build takes about 20 to 40 minutes (the instance, the SSM agent, the snapshot); the provider's
# default timeout for an image is 60.
BUILD_TIMEOUT = "90m"
IMAGE_BUILDER_MANAGED_POLICIES = ("EC2InstanceProfileForImageBuilder", "AmazonSSMManagedInstanceCore")


def image_script(script: str, values: dict[str, str]) -> str:
    """A script of image/ behind a header of its values."""
    header = "".join(f"{name}={shlex.quote(value)}\n" for name, value in sorted(values.items()))
    return header + (IMAGE_SCRIPTS / script).read_text()


def build_document(release: CondorRelease, tarball_url: str, tarball_sha256: str | None) -> str:
    """The Image Builder component document (JSON, which is YAML): the packages, then the release
    and its boot configuration, checked before the image is saved."""
    values = {"CONDOR_VERSION": release.version, "TARBALL_URL": tarball_url, "TARBALL_SHA256": tarball_sha256 or ""}

    def step(name: str, command: str) -> dict:
        return {"name": name, "action": "ExecuteBash", "inputs": {"commands": [command]}}

    return json.dumps(
        {
            "name": "condor-annex-htcondor",
            "description": f"HTCondor {release.version} and its annex boot script, for condor_annex",
            "schemaVersion": 1.0,
            "phases": [
                {
                    "name": "build",
                    "steps": [
                        step("InstallPackages", PACKAGES),
                        step("InstallHTCondor", image_script("install_htcondor.sh", values)),
                    ],
                },
                {
                    "name": "validate",
                    "steps": [
                        step(
                            "HTCondorStarts",
                            image_script("validate_htcondor.sh", {"CONDOR_VERSION": release.version}),
                        )
                    ],
                },
            ],
        },
        indent=1,
    )


@dataclass
class AnnexImageArgs:
    region: str
    release: CondorRelease
    tarball_url: str
    tarball_sha256: str | None
    tags: dict[str, str] = field(default_factory=dict)


class AnnexImage(pulumi.ComponentResource):
    """The pool's release on Amazon Linux 2023, as an AMI of this region, removed again on destroy."""

    image_id: pulumi.Output[str]

    def __init__(self, name: str, args: AnnexImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("condor-annex:aws:AnnexImage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # The build instance's role: what Image Builder's own documentation has it hold.
        role = aws.iam.Role(
            f"{name}-build-role", assume_role_policy=trust("ec2.amazonaws.com"), tags=args.tags, opts=child
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-build-{policy}",
                role=role.name,
                policy_arn=f"arn:aws:iam::aws:policy/{policy}",
                opts=child,
            )
            for policy in IMAGE_BUILDER_MANAGED_POLICIES
        ]
        profile = aws.iam.InstanceProfile(f"{name}-build-profile", role=role.name, tags=args.tags, opts=child)
        component = aws.imagebuilder.Component(
            f"{name}-htcondor",
            platform="Linux",
            version="1.0.0",
            supported_os_versions=["Amazon Linux 2023"],
            description=f"HTCondor {args.release.version} for condor_annex",
            data=build_document(args.release, args.tarball_url, args.tarball_sha256),
            tags=args.tags,
            opts=child,
        )
        recipe = aws.imagebuilder.ImageRecipe(
            f"{name}-recipe",
            # Resolved at each build: AWS's current Amazon Linux 2023 image of the region.
            parent_image=f"ssm:{IMAGE_BASE_PARAMETER}",
            version="1.0.0",
            components=[{"component_arn": component.arn}],
            tags=args.tags,
            opts=child,
        )
        infrastructure = aws.imagebuilder.InfrastructureConfiguration(
            f"{name}-build",
            instance_profile_name=profile.name,
            instance_types=BUILD_INSTANCE_TYPES,
            terminate_instance_on_failure=True,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=attachments),
        )
        distribution = aws.imagebuilder.DistributionConfiguration(
            f"{name}-distribution",
            distributions=[
                {
                    "region": args.region,
                    "ami_distribution_configuration": {
                        "name": f"condor-annex-htcondor-{args.release.version}-{{{{ imagebuilder:buildDate }}}}",
                        "description": f"HTCondor {args.release.version} for condor_annex annex instances",
                        "ami_tags": args.tags,
                    },
                }
            ],
            tags=args.tags,
            opts=child,
        )
        image = aws.imagebuilder.Image(
            name,
            image_recipe_arn=recipe.arn,
            infrastructure_configuration_arn=infrastructure.arn,
            distribution_configuration_arn=distribution.arn,
            # The build's validate phase has checked HTCondor on the build instance itself.
            image_tests_configuration={"image_tests_enabled": False},
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, custom_timeouts=pulumi.CustomTimeouts(create=BUILD_TIMEOUT)),
        )
        self.image_id = image.output_resources.apply(lambda resources: resources[0]["amis"][0]["image"])
        self._cleanup(name, args, self.image_id)
        self.register_outputs({"image_id": self.image_id})

    def _cleanup(self, name: str, args: AnnexImageArgs, image_id: pulumi.Output[str]) -> None:
        """Image Builder leaves the AMI and its snapshots behind when the image goes: a function of
        ours deregisters them, invoked when the image is replaced and on destroy."""
        child = pulumi.ResourceOptions(parent=self)
        logs = aws.cloudwatch.LogGroup(f"{name}-cleanup-logs", retention_in_days=14, tags=args.tags, opts=child)

        def arn(resource: str) -> str:
            # Images and snapshots have no account in their ARNs.
            return f"arn:aws:ec2:{args.region}::{resource}"

        role = aws.iam.Role(
            f"{name}-cleanup-role", assume_role_policy=trust("lambda.amazonaws.com"), tags=args.tags, opts=child
        )
        policy = aws.iam.RolePolicy(
            f"{name}-cleanup-policy",
            role=role.id,
            policy=document(
                {
                    "Sid": "WriteOwnLogs",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": pulumi.Output.concat(logs.arn, ":*"),
                },
                {
                    # Describe calls have no resource-level permissions.
                    "Sid": "FindImageSnapshots",
                    "Effect": "Allow",
                    "Action": "ec2:DescribeImages",
                    "Resource": "*",
                },
                {
                    # Only images this stack's builds tagged.
                    "Sid": "DeregisterOwnImages",
                    "Effect": "Allow",
                    "Action": "ec2:DeregisterImage",
                    "Resource": arn("image/*"),
                    "Condition": {
                        "StringEquals": {
                            f"aws:ResourceTag/{key}": value
                            for key, value in args.tags.items()
                            if key in ("pulumi-project", "pulumi-stack")
                        }
                    },
                },
                {
                    "Sid": "DeleteImageSnapshots",
                    "Effect": "Allow",
                    "Action": "ec2:DeleteSnapshot",
                    "Resource": arn("snapshot/*"),
                },
            ),
            opts=child,
        )
        function = aws.lambda_.Function(
            f"{name}-cleanup",
            runtime=RUNTIME,
            handler="image_cleanup.handler",
            role=role.arn,
            code=lambda_archive(),
            timeout=60,
            logging_config={"log_format": "JSON", "log_group": logs.name},
            tags=args.tags,
            opts=child,
        )
        aws.lambda_.Invocation(
            f"{name}-cleanup-invocation",
            function_name=function.name,
            input=pulumi.Output.json_dumps({"images": [image_id]}),
            lifecycle_scope="CRUD",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
