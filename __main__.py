"""condor-annex: everything `condor_annex -setup` and its manual preparation do, as one stack."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.annex_client import AnnexClient, AnnexClientArgs, AnnexKnobs, user_config_knobs
from components.annex_user import AnnexUser, AnnexUserArgs
from components.bucket import ConfigurationBucket, ConfigurationBucketArgs
from components.check_setup import CheckSetupStacks, CheckSetupStacksArgs
from components.condor_dir import CondorDir, CondorDirArgs
from components.instance_profile import InstanceProfile, InstanceProfileArgs
from components.key_pair import KeyPair, KeyPairArgs
from components.lambdas import LeaseFunctions, LeaseFunctionsArgs
from components.machine import LocalMachine, SshMachine
from components.personal_condor import PersonalCondor, PersonalCondorArgs
from components.security_group import SecurityGroup, SecurityGroupArgs
from components.settings import read_settings

settings = read_settings()
tags = {"managed-by": "pulumi", "pulumi-project": pulumi.get_project(), "pulumi-stack": pulumi.get_stack()}
account_id = aws.get_caller_identity_output().account_id

# AWS side: the five components -setup creates, the annex user the guide makes by hand, and the
# four marker stacks that make the user's own -check-setup pass.
bucket = ConfigurationBucket("annex-config", ConfigurationBucketArgs(tags=tags))
functions = LeaseFunctions(
    "annex-functions",
    LeaseFunctionsArgs(
        region=settings.region,
        account_id=account_id,
        bucket_name=bucket.bucket_name,
        log_retention_days=settings.log_retention_days,
        tags=tags,
    ),
)
profile = InstanceProfile(
    "annex-instance", InstanceProfileArgs(account_id=account_id, bucket_name=bucket.bucket_name, tags=tags)
)
group = SecurityGroup(
    "annex-sg",
    SecurityGroupArgs(
        vpc_id=aws.ec2.get_vpc_output(default=True).id,
        collector_port=settings.collector_port,
        ssh_ingress_cidrs=settings.ssh_ingress_cidrs,
        condor_ingress_cidrs=settings.condor_ingress_cidrs,
        tags=tags,
    ),
)
annex_user = AnnexUser(
    "annex-user",
    AnnexUserArgs(
        region=settings.region,
        account_id=account_id,
        bucket_name=bucket.bucket_name,
        odi_lease_arn=functions.odi_lease_arn,
        sfr_lease_arn=functions.sfr_lease_arn,
        connectivity_arn=functions.connectivity_arn,
        instance_role_arn=profile.role_arn,
        security_group_id=group.group_id,
        tags=tags,
    ),
)
check_stacks = CheckSetupStacks(
    "check-setup",
    CheckSetupStacksArgs(
        bucket_name=bucket.bucket_name,
        odi_lease_arn=functions.odi_lease_arn,
        sfr_lease_arn=functions.sfr_lease_arn,
        connectivity_arn=functions.connectivity_arn,
        instance_profile_arn=profile.profile_arn,
        security_group_id=group.group_id,
        marks=[bucket, functions, profile, group],
        tags=tags,
    ),
)

# Linux side: the personal condor waits for nothing on AWS; the client half waits for its values.
machine = (
    LocalMachine()
    if settings.runs_locally
    else SshMachine(
        host=settings.host,
        user=settings.ssh_user,
        port=settings.ssh_port,
        private_key=settings.ssh_private_key,
        host_key=settings.ssh_host_key,
    )
)
condor_dir = CondorDir("condor-dir", CondorDirArgs(machine=machine))
key_pair = KeyPair(
    "annex-key-pair",
    KeyPairArgs(
        machine=machine,
        key_pair_file=settings.release.key_pair_file(settings.region),
        condor_dir=condor_dir.ready,
        tags=tags,
    ),
)
condor = PersonalCondor(
    "personal-condor",
    PersonalCondorArgs(
        machine=machine,
        release=settings.release,
        install_dir=settings.install_dir,
        tarball_url=settings.tarball_url,
        tarball_sha256=settings.tarball_sha256,
        collector_port=settings.collector_port,
        pool_password=settings.pool_password,
        condor_dir=condor_dir.ready,
    ),
)
knobs = pulumi.Output.all(
    bucket.bucket_name, group.group_id, functions.odi_lease_arn, functions.sfr_lease_arn, profile.profile_arn
).apply(
    lambda ids: AnnexKnobs(
        settings.region, *ids, image_id=settings.annex_image_id, instance_type=settings.annex_instance_type
    )
)
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
        aws_ready=[check_stacks, key_pair.ready],
    ),
)

pulumi.export("region", settings.region)
pulumi.export("bucketName", bucket.bucket_name)
pulumi.export("odiLeaseFunctionArn", functions.odi_lease_arn)
pulumi.export("sfrLeaseFunctionArn", functions.sfr_lease_arn)
pulumi.export("connectivityFunctionArn", functions.connectivity_arn)
pulumi.export("instanceProfileArn", profile.profile_arn)
pulumi.export("instanceRoleArn", profile.role_arn)
pulumi.export("securityGroupId", group.group_id)
pulumi.export("keyPairName", key_pair.key_name)
pulumi.export("annexUserName", annex_user.user_name)
pulumi.export("accessKeyId", annex_user.access_key_id)
pulumi.export("secretAccessKey", annex_user.secret_access_key)
pulumi.export("checkSetupStackIds", check_stacks.stack_ids)
pulumi.export("userConfigKnobs", knobs.apply(lambda values: user_config_knobs(settings.release, values)))
pulumi.export("condorVersion", settings.release.version)
pulumi.export("installDir", condor.install_dir)
pulumi.export("condorSh", condor.condor_sh)
pulumi.export("condorConfigFile", condor.config_file)
pulumi.export("poolPasswordFile", condor.pool_password_file)
pulumi.export("userConfigFile", client.user_config_file)
pulumi.export("accessKeyFile", client.access_key_file)
pulumi.export("secretKeyFile", client.secret_key_file)
pulumi.export("keyPairFile", key_pair.key_pair_file)
