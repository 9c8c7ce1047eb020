"""The machine side of the condor-annex program alone, run by the real engine in the tests.

It wires the machine's components exactly as the project's `__main__.py` does, from the same
`condor-annex:*` config (tests/engine/test_machine_program.py holds the two to the same commands).
What the AWS side would give it, which no AWS provider can make here, comes as config under
`aws-side:*`: each region's ids (`byRegion`, the project's own output) and the annex user's key;
or, with `fakeIam` (the key rotation test), the key is made per annexKeyGeneration, under the name
the project gives it, by a stand-in for IAM (tests/e2e/fake_iam.py), so that the engine orders its
create and delete as it orders the real AccessKey's.
"""

from __future__ import annotations

import sys

import pulumi
import pulumi_command as command

from components.annex_client import AnnexClient, AnnexClientArgs, AnnexKnobs
from components.annex_guard import AnnexGuard, AnnexGuardArgs
from components.annex_user import access_key_name
from components.condor_dir import CondorDir, CondorDirArgs
from components.key_pair import KeyPair, KeyPairArgs
from components.machine import anchored, machine_for
from components.personal_condor import PersonalCondor, PersonalCondorArgs
from components.preflight import Preflight, PreflightArgs
from components.settings import read_settings

settings = read_settings()
aws_side = pulumi.Config("aws-side")

machine = machine_for(settings)
preflight = Preflight(
    "preflight", PreflightArgs(machine=machine, release=settings.release, tarball_url=settings.tarball_url)
)
# Every later step is tied to the preflight: a move to another machine undoes them all first.
machine = anchored(machine, preflight.ready)
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
            imports_to_ec2=False,
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
# The AWS side's ids, in the shape of the project's own `byRegion` output.
by_region = aws_side.require_object("byRegion")
knobs = {
    region: pulumi.Output.from_input(
        AnnexKnobs(
            region,
            bucket_name=by_region[region]["bucketName"],
            security_group_id=by_region[region]["securityGroupId"],
            odi_lease_arn=by_region[region]["odiLeaseFunctionArn"],
            sfr_lease_arn=by_region[region]["sfrLeaseFunctionArn"],
            instance_profile_arn=by_region[region]["instanceProfileArn"],
            image_id=settings.annex_image_id,
            instance_type=settings.annex_instance_type,
        )
    )
    for region in settings.regions
}
fake_iam = aws_side.get("fakeIam")
if fake_iam:
    generation = settings.annex_key_generation
    iam = f"{sys.executable} -m tests.e2e.fake_iam"
    key = command.local.Command(
        access_key_name("annex-user", generation),
        create=f"{iam} create {fake_iam} {generation}",
        delete=f"{iam} delete {fake_iam} {generation}",
        opts=pulumi.ResourceOptions(additional_secret_outputs=["stdout"]),
    )
    # The id is no secret (the project exports it plainly): taken from the made key's id line.
    access_key_id = pulumi.Output.unsecret(key.stdout.apply(lambda made: made.split()[0]))
    secret_access_key = key.stdout.apply(lambda made: made.split()[1])
else:
    access_key_id = aws_side.require("accessKeyId")
    secret_access_key = aws_side.require_secret("secretAccessKey")
client = AnnexClient(
    "annex-client",
    AnnexClientArgs(
        machine=machine,
        release=settings.release,
        install_dir=settings.install_dir,
        knobs=knobs,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        condor_dir=condor_dir.ready,
        condor_ready=condor.ready,
        aws_ready={region: [key_pairs[region].ready] for region in settings.regions},
        # The images the project's AWS side built, as its byRegion output names them.
        built_images={
            region: pulumi.Output.from_input(by_region[region]["annexImageId"]) for region in settings.regions
        }
        if settings.annex_image_tarball_url
        else {},
    ),
)

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

pulumi.export("installDir", condor.install_dir)
pulumi.export("condorConfigFile", condor.config_file)
pulumi.export("poolPasswordFile", condor.pool_password_file)
pulumi.export("userConfigFile", client.user_config_file)
pulumi.export("keyPairFiles", {region: key_pair.key_pair_file for region, key_pair in key_pairs.items()})
