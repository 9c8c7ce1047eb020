"""condor-annex: everything `condor_annex -setup` and its manual preparation do, as one stack."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.account import Owner, default_vpcs, joined_setups, refuse_past_the_role_quota
from components.annex_client import AnnexClient, AnnexClientArgs, AnnexKnobs, image_knobs, user_config_knobs
from components.annex_guard import AnnexGuard, AnnexGuardArgs
from components.annex_image import AnnexImage, AnnexImageArgs
from components.annex_user import AnnexUser, AnnexUserArgs
from components.condor_dir import CondorDir, CondorDirArgs
from components.joined_region import JoinedRegion, JoinedRegionArgs
from components.key_pair import KeyPair, KeyPairArgs, key_pair_name
from components.machine import anchored, machine_for
from components.personal_condor import PersonalCondor, PersonalCondorArgs
from components.preflight import Preflight, PreflightArgs
from components.previous_up import account_region, previous_up, refuse_too_many_policies_at_once
from components.region import AnnexRegion, AnnexRegionArgs, RegionSetup
from components.settings import read_settings

settings = read_settings()
previous = previous_up()
refuse_too_many_policies_at_once(previous, settings.regions)
tags = {"managed-by": "pulumi", "pulumi-project": pulumi.get_project(), "pulumi-stack": pulumi.get_stack()}
first_region = settings.regions[0]

machine = machine_for(settings)
# Before anything is made, here or on AWS: a machine that cannot take the install stops the up.
preflight = Preflight(
    "preflight", PreflightArgs(machine=machine, release=settings.release, tarball_url=settings.tarball_url)
)
# Every later step is tied to the preflight: a move to another machine undoes them all first.
machine = anchored(machine, preflight.ready)

# AWS side, per region: the five components -setup creates and the four marker stacks that make the
# user's own -check-setup pass, each region through its own provider, which waits for the preflight.
providers = {
    region: aws.Provider(
        f"aws-{region}",
        region=region,
        profile=settings.aws_profile,
        opts=pulumi.ResourceOptions(depends_on=[preflight.ready]),
    )
    for region in settings.regions
}
# Account-wide resources go through a provider of their own, which no change of `regions` touches.
account_provider = aws.Provider(
    "aws-account",
    region=account_region(previous, settings.regions),
    profile=settings.aws_profile,
    opts=pulumi.ResourceOptions(depends_on=[preflight.ready]),
)
# Room in the account for the IAM roles this up makes, before any AWS resource: IAM would refuse the
# one past the quota part-way through.
refuse_past_the_role_quota(
    previous.added(settings.regions),
    joins=settings.join_stack is not None,
    builds_images=settings.annex_image_tarball_url is not None,
    provider=account_provider,
)
owner = Owner(project=pulumi.get_project(), stack=pulumi.get_stack())
account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(provider=account_provider)).account_id
key_name = key_pair_name(owner.stack, joins=settings.join_stack is not None)
regions: dict[str, RegionSetup]
if settings.join_stack:
    # Another stack's setup, read from AWS before any AWS resource: its connectivity function and
    # marker stacks, fixed by name, are shared; everything else of this user's is their own.
    joined = Owner(*settings.join_stack.split("/"))
    regions = {
        region: JoinedRegion(
            f"annex-{region}",
            JoinedRegionArgs(
                region=region,
                account_id=account_id,
                shared=shared,
                owner=str(owner),
                ssh_ingress_cidrs=settings.ssh_ingress_cidrs,
                condor_ingress_cidrs=settings.condor_ingress_cidrs,
                log_retention_days=settings.log_retention_days,
                annex_name_prefix=settings.annex_name_prefix,
                tags=tags,
            ),
            opts=pulumi.ResourceOptions(providers=[providers[region]]),
        )
        for region, shared in joined_setups(providers, owner, joined, key_name).items()
    }
else:
    # Names another setup holds, and regions without a default VPC, stop the up before any AWS resource.
    vpcs = default_vpcs(providers, owner)
    regions = {
        region: AnnexRegion(
            f"annex-{region}",
            AnnexRegionArgs(
                region=region,
                account_id=account_id,
                vpc_id=vpcs[region],
                ssh_ingress_cidrs=settings.ssh_ingress_cidrs,
                condor_ingress_cidrs=settings.condor_ingress_cidrs,
                log_retention_days=settings.log_retention_days,
                keeps_names_from_before_regions=region == first_region,
                annex_name_prefix=settings.annex_name_prefix,
                tags=tags,
            ),
            opts=pulumi.ResourceOptions(providers=[provider]),
        )
        for region, provider in providers.items()
    }
# Per region, an image with the pool's own release for annex instances to boot, unless one is given.
images = {
    region: AnnexImage(
        f"annex-image-{region}",
        AnnexImageArgs(
            region=region,
            release=settings.release,
            tarball_url=settings.annex_image_tarball_url,
            tarball_sha256=settings.annex_image_tarball_sha256,
            tags=tags,
        ),
        opts=pulumi.ResourceOptions(providers=[providers[region]]),
    )
    for region in settings.regions
    if settings.annex_image_tarball_url
}
built_images = {region: image.image_id for region, image in images.items()}

# Account-wide: the annex user the guide makes by hand, allowed into every region's resources.
annex_user = AnnexUser(
    "annex-user",
    AnnexUserArgs(
        account_id=account_id,
        regions=list(regions.values()),
        tags=tags,
        key_generation=settings.annex_key_generation,
        key_pair_name=key_name,
        annex_name_prefix=settings.annex_name_prefix,
    ),
    opts=pulumi.ResourceOptions(providers=[account_provider]),
)

# Linux side: the personal condor waits for nothing on AWS; the client half waits for its values.
condor_dir = CondorDir(
    "condor-dir", CondorDirArgs(machine=machine, release=settings.release, preflight=preflight.ready)
)
key_pairs = {
    region: KeyPair(
        f"annex-key-pair-{region}",
        KeyPairArgs(
            machine=machine,
            key_pair_file=settings.release.key_pair_file(region),
            condor_dir=condor_dir.ready,
            tags=tags,
            key_name=key_name,
        ),
        # Its name before `regions` existed, for a stack made then (see AnnexRegionArgs).
        opts=pulumi.ResourceOptions(
            providers=[providers[region]],
            aliases=[pulumi.Alias(name="annex-key-pair")] if region == first_region else None,
        ),
    )
    for region in settings.regions
}
condor = PersonalCondor(
    "personal-condor",
    PersonalCondorArgs(
        machine=machine,
        release=settings.release,
        install_dir=settings.install_dir,
        tarball_url=settings.tarball_url,
        tarball_sha256=settings.tarball_sha256,
        collector_port=settings.collector_port,
        public_name=settings.public_name,
        pool_password=settings.pool_password,
        condor_dir=condor_dir.ready,
    ),
)
knobs = {
    region: pulumi.Output.all(
        annex.bucket_name,
        annex.security_group_id,
        annex.odi_lease_arn,
        annex.sfr_lease_arn,
        annex.instance_profile_arn,
    ).apply(
        lambda ids, region=region: AnnexKnobs(
            region,
            *ids,
            image_id=settings.annex_image_id,
            instance_type=settings.annex_instance_type,
            key_pair_name=key_name,
        )
    )
    for region, annex in regions.items()
}
client = AnnexClient(
    "annex-client",
    AnnexClientArgs(
        machine=machine,
        release=settings.release,
        install_dir=settings.install_dir,
        knobs=knobs,
        access_key_id=annex_user.access_key_id,
        secret_access_key=annex_user.secret_access_key,
        condor_dir=condor_dir.ready,
        condor_ready=condor.ready,
        aws_ready={
            region: [annex.ready, key_pairs[region].ready, annex_user.attachments[region]]
            for region, annex in regions.items()
        },
        built_images=built_images,
        image_builds=list(images.values()),
    ),
)
# Made last, undone first: destroy asks for annexes still running before it removes anything.
AnnexGuard(
    "annex-guard",
    AnnexGuardArgs(
        machine=machine,
        release=settings.release,
        install_dir=settings.install_dir,
        regions=settings.regions,
        on_destroy=settings.annexes_on_destroy,
        after=[*client.last, condor.autostart],
    ),
)

# Per region, a map keyed by region; the names from before regions existed give the first region's.
region_outputs = {
    region: {
        "bucketName": annex.bucket_name,
        "odiLeaseFunctionArn": annex.odi_lease_arn,
        "sfrLeaseFunctionArn": annex.sfr_lease_arn,
        "connectivityFunctionArn": annex.connectivity_arn,
        "instanceProfileArn": annex.instance_profile_arn,
        "instanceRoleArn": annex.instance_role_arn,
        "securityGroupId": annex.security_group_id,
        "checkSetupStackIds": annex.check_stack_ids,
        "keyPairName": key_pairs[region].key_name,
        "keyPairFile": key_pairs[region].key_pair_file,
        "annexImageId": built_images.get(region, settings.annex_image_id),
    }
    for region, annex in regions.items()
}
pulumi.export("regions", settings.regions)
pulumi.export("region", first_region)
pulumi.export("accountRegion", account_provider.region)
pulumi.export("byRegion", region_outputs)
for name, value in region_outputs[first_region].items():
    pulumi.export(name, value)
pulumi.export("annexUserName", annex_user.user_name)
pulumi.export("accessKeyId", annex_user.access_key_id)
pulumi.export("secretAccessKey", annex_user.secret_access_key)
pulumi.export(
    "userConfigKnobs",
    # Output.all of no values resolves to a list, not a mapping.
    pulumi.Output.all(
        pulumi.Output.all(*knobs.values()),
        pulumi.Output.all(**built_images) if built_images else pulumi.Output.from_input({}),
    ).apply(lambda values: user_config_knobs(settings.release, values[0]) | image_knobs(settings.release, values[1])),
)
# How to use the annex, region by region, with HTCondor's own commands (README: "Using your annex").
pulumi.export(
    "annexCommands",
    {
        region: {
            "environment": f". {condor.condor_sh}",
            **settings.release.annex_commands(
                region, first_region, settings.annex_instance_type, settings.annex_name_prefix
            ),
        }
        for region in settings.regions
    },
)
pulumi.export("condorVersion", settings.release.version)
pulumi.export("installDir", condor.install_dir)
pulumi.export("condorSh", condor.condor_sh)
pulumi.export("condorConfigFile", condor.config_file)
pulumi.export("poolPasswordFile", condor.pool_password_file)
pulumi.export("keepStoppedFile", condor.keep_stopped_file)
pulumi.export("userConfigFile", client.user_config_file)
pulumi.export("accessKeyFile", client.access_key_file)
pulumi.export("secretKeyFile", client.secret_key_file)
