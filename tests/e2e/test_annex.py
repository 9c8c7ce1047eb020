"""From `pulumi up` to the guide's job finished on an annex instance, on the real HTCondor 24.0.23 and
25.0.13 of ../shared/real-htcondor, against AWS as moto plays it (tests/e2e/annex_world.py).

Each case, for the line's own annex command as a user runs it:
- the program's AWS side made in moto, its machine steps run over SSH on the machine (the replay);
- the real condor_annex (24.0.23) or `htcondor annex create` (25.0.13) starts an instance, every
  AWS call under moto's IAM enforcement with the annex user's key the program wrote;
- the instance boots the image the stack's own build steps made, from the security group's rules
  as its firewall, and joins the pool at publicName through the pool's own security configuration;
- the guide's job, submitted as the user would, completes on the annex's slot, and the line's
  status command shows the annex;
- destroy refuses while the annex runs, naming it and the command that ends it; that command ends
  its lease, the lease function (the project's handler, fired by EventBridge's schedule) terminates
  the instance and deletes its tarball and rule, and the annex's daemons leave the pool;
- destroy then leaves the home and the account as they were.
One case a line behind a NAT (publicName is not the machine's address) with collectorPort 9619.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Iterator

import pytest

from components.contract import ANNEX_INSTANCE_PORT, CondorRelease
from tests.e2e.annex_world import (
    INSTANCE_LINK,
    REGIONS,
    AwsPlayers,
    World,
    annex_world,
    image_documents,
    registered_ingress,
    sha256_of,
    wait_for,
)
from tests.e2e.machine import SSH_HOST, host_key_line, readable_by_everyone, reset_home, snapshot
from tests.e2e.replay import StepFailedError, destroy, step_named, up
from tests.harness import Program, run_program
from tests.moto_cloud import MotoCloud


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with annex_world(readable_by_everyone(tmp_path_factory.mktemp("annex"))) as made:
        yield made


def annex_config(world: World, version: str, collector_port: int, regions: list[str], **more: str) -> dict[str, str]:
    sha256 = sha256_of(version)
    return {
        "aws:region": regions[0],
        "condor-annex:regions": json.dumps(regions),
        "condor-annex:host": SSH_HOST,
        "condor-annex:sshPort": str(world.machine.port),
        "condor-annex:sshUser": world.machine.user,
        "condor-annex:sshHostKey": host_key_line(world.machine.host_key),
        "condor-annex:publicName": world.public_name,
        "condor-annex:condorVersion": version,
        "condor-annex:condorTarballUrl": world.tarballs.url(f"/condor-{version}-{{platform}}-stripped.tar.gz"),
        "condor-annex:condorTarballSha256": sha256,
        "condor-annex:annexImageTarballSha256": sha256,
        "condor-annex:collectorPort": str(collector_port),
        "condor-annex:condorIngressCidrs": json.dumps([f"{world.public_name}/32"]),
        "condor-annex:sshIngressCidrs": "[]",
        **{f"condor-annex:{key}": value for key, value in more.items()},
    }


class User:
    """The machine's user at a shell, HTCondor's environment sourced."""

    def __init__(self, world: World, install_dir: str) -> None:
        self.world = world
        self.install_dir = install_dir

    def run(self, command: str, timeout: float = 300, stdin: str | None = None) -> tuple[int, str]:
        done = self.world.machine.run(f". {self.install_dir}/condor.sh && {command}", stdin=stdin, timeout=timeout)
        return done.status, done.stdout + done.stderr

    def ok(self, command: str, timeout: float = 300) -> str:
        status, output = self.run(command, timeout)
        assert status == 0, f"{command} failed: {output}"
        return output


def guide_job(user: User, annex: str, hpc: bool) -> int:
    """The guide's sleep job, aimed at the annex as each line's documentation says; its cluster id."""
    lines = ["executable = /bin/sleep", "arguments = 5", "log = sleep.log"]
    if not hpc:
        lines += ["+MayUseAWS = TRUE", f'requirements = AnnexName =?= "{annex}"']
    user.ok(f"mkdir -p ~/annex-job && printf '%s\\n' {shlex.join([*lines, 'queue'])} > ~/annex-job/sleep.submit")
    submit = f"htcondor job submit --annex-name {annex} sleep.submit" if hpc else "condor_submit sleep.submit"
    output = user.ok(f"cd ~/annex-job && {submit}")
    return int(re.search(r"(?:cluster |Job )(\d+)", output).group(1))


def completed_on(user: User, cluster: int, players: AwsPlayers) -> str:
    def done() -> str:
        user.run("condor_reschedule")
        status, output = user.run(f"condor_history {cluster} -limit 1 -af JobStatus LastRemoteHost")
        fields = output.split()
        return fields[1] if status == 0 and fields[:1] == ["4"] else ""

    def why() -> str:
        return user.run(f"condor_q -better-analyze {cluster}")[1] + "\n" + players.logs()

    return wait_for(f"job {cluster} completing", done, timeout=300, every=5, why=why)


def live_instances(world: World, region: str) -> list[dict]:
    ec2 = world.admin.client("ec2", region_name=region)
    return [
        instance
        for reservation in ec2.describe_instances()["Reservations"]
        for instance in reservation["Instances"]
        if instance["State"]["Name"] in ("pending", "running")
    ]


def annex_command(program: Program, region: str, what: str, annex: str) -> str:
    """The stack's own `annexCommands` output (the README's "Using your annex"), for this annex: the
    output begins each annex name with the stack's annexNamePrefix."""
    return program.outputs["annexCommands"].value[region][what].replace("ANNEX_NAME", annex.removeprefix(LAB_PREFIX))


def start_annex(user: User, program: Program, region: str, annex: str) -> None:
    # condor_annex asks before it spends money; the user says yes.
    status, created = user.run(annex_command(program, region, "start", annex), stdin="yes\n")
    # condor_annex exits 0 whether or not it made the annex: its words say.
    assert status == 0 and "Annex started." in created, created


# The annexNamePrefix of the cases behind a NAT: the real condor_annex's rule for the annex, and the
# lease function's removal of it, under IAM enforcement with the policies the prefix narrows.
LAB_PREFIX = "lab-"


@pytest.mark.parametrize(
    "version, nat, collector_port",
    [("24.0.23", False, 9618), ("25.0.13", True, 9619), ("24.0.23", True, 9619), ("25.0.13", False, 9618)],
    ids=["24.0.23", "25.0.13-nat-9619", "24.0.23-nat-9619", "25.0.13"],
)
def test_an_annex_runs_the_guides_job(world: World, version: str, nat: bool, collector_port: int):
    release = CondorRelease(version)
    regions = list(REGIONS) if release.hpc_annex else list(REGIONS[:1])
    reset_home(world.machine)
    world.set_nat(nat)
    cloud = world.reset_aws()
    home_before, account_before = snapshot(world.machine.home), world.inventory()

    prefix = LAB_PREFIX if nat else ""
    config = annex_config(world, version, collector_port, regions, annexNamePrefix=prefix)
    program = run_program(config, cloud=cloud)
    outputs = program.outputs["byRegion"].value
    world.write_hosts([outputs[region]["bucketName"] for region in regions])
    players = AwsPlayers(world, regions[0])
    players.image_documents = image_documents(program)
    players.ingress = registered_ingress(program)
    assert {rule["fromPort"] for rule in players.ingress} == {ANNEX_INSTANCE_PORT}
    players.start()
    try:
        live_annex(world, program, release, regions, players, prefix)
        ended_annex_lets_destroy_finish(
            world, program, config, release, regions, players, cloud, home_before, account_before, prefix
        )
    finally:
        players.stop()
    assert not players.failures, players.failures


def live_annex(
    world: World, program: Program, release: CondorRelease, regions: list[str], players: AwsPlayers, prefix: str
) -> None:
    results = up(world.machine, program)
    for region in regions:
        assert "Your setup looks OK" in results[f"annex-client-check-setup-{region}"].stderr
    assert f"the collector annexes reach answers at {world.public_name}:" in results["personal-condor-start"].stderr
    user = User(world, program.outputs["installDir"].value.replace("~", str(world.machine.home)))
    annex_key = program.outputs["accessKeyId"].value
    annex = f"{prefix}first-annex"
    if prefix:
        unprefixed_annex_is_refused(world, program, user, release, regions[0], prefix)
    cluster = guide_job(user, annex, release.hpc_annex) if release.hpc_annex else None
    started = time.monotonic()
    start_annex(user, program, regions[0], annex)
    instance = wait_for("an instance of the annex", lambda: live_instances(world, regions[0]), timeout=60)[0]
    assert instance["IamInstanceProfile"]["Arn"] == program.outputs["byRegion"].value[regions[0]]["instanceProfileArn"]
    assert instance["ImageId"] == program.outputs["byRegion"].value[regions[0]]["annexImageId"]
    assert instance["ClientToken"].startswith(f"{annex}_")

    # The instance joins, and the guide's job runs on it.
    slot = wait_for(
        "the annex's slot in the pool",
        lambda: (
            players.failures
            or user.run(
                f"condor_status {'-pool $(condor_config_val ANNEX_COLLECTOR)' if release.hpc_annex else ''}"
                f" -const 'AnnexName == \"{annex}\"' -af Name"
            )[1].strip()
        ),
        timeout=240,
        why=players.logs,
    )
    assert not players.failures, players.failures
    assert INSTANCE_LINK.host_address.replace(".", "-") in str(slot)
    if cluster is None:
        cluster = guide_job(user, annex, release.hpc_annex)
    ran_on = completed_on(user, cluster, players)
    assert ran_on.endswith(f"@ip-{INSTANCE_LINK.host_address.replace('.', '-')}.ec2.internal"), ran_on
    print(f"{release.version}: annex command to the job's completion: {time.monotonic() - started:.1f}s")
    status = user.ok(annex_command(program, regions[0], "watch", annex))
    assert ("is established" if release.hpc_annex else "in-pool") in status, status
    calls = world.aws.calls_with(annex_key)
    print(f"{release.version}: AWS calls with the annex user's key: {len(calls)}")
    if len(regions) > 1:
        annex_in_another_region(world, program, user, release, regions, f"{prefix}second-annex")


def unprefixed_annex_is_refused(
    world: World, program: Program, user: User, release: CondorRelease, region: str, prefix: str
) -> None:
    """The README's word on annexNamePrefix: an annex named without it is refused by AWS at its
    rule and launches nothing, and the configuration condor_annex uploaded first stays in the
    user's bucket, where the deployer's credentials remove it."""
    stray = "stray-annex"
    # `htcondor annex create` goes no further than its check for a job waiting for the annex.
    waiting = guide_job(user, stray, release.hpc_annex) if release.hpc_annex else None
    start = program.outputs["annexCommands"].value[region]["start"].replace(f"{prefix}ANNEX_NAME", stray)
    _, refused = user.run(start, stdin="yes\n")
    assert "is not authorized to perform: events:PutRule" in refused, refused
    assert not live_instances(world, region), "an annex without the prefix launched an instance"
    assert stray not in world.inventory()[f"{region} rules"]
    bucket = program.outputs["byRegion"].value[region]["bucketName"]
    s3 = world.admin.client("s3")
    assert [item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [f"config-{stray}.tar.gz"]
    s3.delete_object(Bucket=bucket, Key=f"config-{stray}.tar.gz")
    if waiting is not None:
        user.ok(f"condor_rm {waiting}")


def annex_in_another_region(
    world: World, program: Program, user: User, release: CondorRelease, regions: list[str], annex: str
) -> None:
    """25.0's `htcondor annex create` has no region option: the README's environment setting makes
    condor_annex take another region, with that region's own knobs."""
    guide_job(user, annex, release.hpc_annex)
    start_annex(user, program, regions[1], annex)
    instance = wait_for("an instance in the second region", lambda: live_instances(world, regions[1]), timeout=60)[0]
    second = program.outputs["byRegion"].value[regions[1]]
    assert instance["IamInstanceProfile"]["Arn"] == second["instanceProfileArn"]
    assert instance["ImageId"] == second["annexImageId"]
    assert [group["GroupId"] for group in instance["SecurityGroups"]] == [second["securityGroupId"]]
    uploaded = world.admin.client("s3").list_objects_v2(Bucket=second["bucketName"]).get("Contents", [])
    assert [item["Key"] for item in uploaded] == [f"config-{annex}.tar.gz"]


def ending_annexes(world: World, program: Program, config: dict[str, str]) -> Program:
    """`pulumi config set annexesOnDestroy end && pulumi up`: only the guard changes, and runs."""
    guard = step_named(program, "annex-guard")
    ending = step_named(run_program({**config, "condor-annex:annexesOnDestroy": "end"}), "annex-guard")
    assert ending.inputs["delete"] == guard.inputs["delete"].replace("ON_DESTROY=refuse", "ON_DESTROY=end")
    guard.inputs = ending.inputs
    assert world.machine.run(guard.inputs["create"], connection=guard.inputs["connection"]).status == 0
    return program


def ended_annex_lets_destroy_finish(
    world: World,
    program: Program,
    config: dict[str, str],
    release: CondorRelease,
    regions: list[str],
    players: AwsPlayers,
    cloud: MotoCloud,
    home_before: dict,
    account_before: dict,
    prefix: str,
) -> None:
    user = User(world, program.outputs["installDir"].value.replace("~", str(world.machine.home)))
    # Destroy refuses, and deletes nothing.
    with pytest.raises(StepFailedError) as refused:
        destroy(world.machine, program)
    assert refused.value.step == "annex-guard", refused.value
    message = refused.value.result.stderr
    assert f"annex {prefix}first-annex in us-east-1: 1 instance(s)" in message, message
    end = re.search(r"first-annex in .*end it with: (.+)$", message, re.M).group(1)
    assert live_instances(world, regions[0]), "the refusal ended the annex"
    if len(regions) > 1:
        assert f"annex {prefix}second-annex in {regions[1]}: 1 instance(s)" in message, message

    # The user ends it: on 24.0 as the refusal says, and the lease function ends the instance at its
    # rule's next firing; on 25.0 with the README's `htcondor annex shutdown`, and the instance shuts
    # itself down (50ec2.config's master shutdown script), which EC2 turns into its end.
    user.ok(end if not release.hpc_annex else annex_command(program, regions[0], "end", f"{prefix}first-annex"))
    wait_for("the annex's instance terminated", lambda: not live_instances(world, regions[0]), timeout=180)
    pool = "-pool $(condor_config_val ANNEX_COLLECTOR)" if release.hpc_annex else ""
    wait_for(
        "the annex leaving the pool",
        lambda: players.terminated and "first-annex" not in user.run(f"condor_status {pool} -any -af AnnexName")[1],
        timeout=200,
    )
    if not release.hpc_annex:
        bucket = program.outputs["byRegion"].value[regions[0]]["bucketName"]
        assert not world.admin.client("s3").list_objects_v2(Bucket=bucket).get("Contents"), "the tarball stayed"
        assert "first-annex" not in world.inventory()[f"{regions[0]} rules"]

    # Nothing runs any more, or (the second region's annex) destroy is told to end what runs: it
    # goes through, and leaves the home and the account as they were (but for the user's own job
    # directory, which is theirs to keep).
    user.ok("rm -rf ~/annex-job")
    if len(regions) > 1:
        program = ending_annexes(world, program, config)
    destroy(world.machine, program)
    cloud.destroy()
    assert snapshot(world.machine.home) == home_before, "destroy left the home different from before"
    assert world.inventory() == account_before, "destroy left the account different from before"
