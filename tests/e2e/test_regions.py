"""Adding a region to a working stack and removing it again, on the machine over SSH."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import write_aws_state
from tests.e2e.machine import Machine, TarballServer, lock_dirs, snapshot
from tests.e2e.release import StandinFiles
from tests.e2e.replay import destroy, program_for, run_step, step_named, transition, up

VERSION = "25.0.13"


def test_a_region_added_then_removed_leaves_the_first_working(
    machine: Machine, tarballs: TarballServer, standin_files: StandinFiles, fresh_home: Path
):
    before = snapshot(fresh_home)
    write_aws_state(standin_files, regions=("us-east-1", "eu-west-2"))
    one, port = program_for(machine, tarballs, VERSION, regions=json.dumps(["us-east-1"]))
    two, _ = program_for(machine, tarballs, VERSION, port=port, regions=json.dumps(["us-east-1", "eu-west-2"]))
    up(machine, one)
    condor_dir = fresh_home / ".condor"

    added = transition(machine, one, two)
    assert added == [
        "create annex-key-pair-eu-west-2-make",
        "create annex-client-user-config",
        "create annex-client-images",
        "create annex-client-check-setup-eu-west-2",
        "create annex-guard",
    ]
    user_config = (condor_dir / "user_config").read_text()
    assert "ANNEX_DEFAULT_AWS_REGION = us-east-1" in user_config and "eu_west_2.ANNEX_DEFAULT_S3_BUCKET" in user_config
    assert "eu_west_2.ANNEX_DEFAULT_ODI_IMAGE_ID" in user_config, "the new region's annexes boot its own image"
    assert (condor_dir / "HTCondorAnnex-KeyPair.eu-west-2.pem").exists()

    # The region's AWS side goes with it; the first region's own check must still pass.
    write_aws_state(standin_files, regions=("us-east-1",))
    removed = transition(machine, two, one)
    assert removed == [
        "delete annex-client-check-setup-eu-west-2",
        "delete annex-key-pair-eu-west-2-make",
        "create annex-client-user-config",
        "create annex-client-images",
        "create annex-guard",
    ]
    assert "eu_west_2" not in (condor_dir / "user_config").read_text()
    assert not (condor_dir / "HTCondorAnnex-KeyPair.eu-west-2.pem").exists()
    assert (condor_dir / "HTCondorAnnex-KeyPair.us-east-1.pem").exists()
    check = run_step(machine, step_named(one, "annex-client-check-setup-us-east-1"))
    assert check.status == 0 and "Your setup looks OK" in check.stderr, check.stderr

    destroy(machine, one)
    assert snapshot(fresh_home) == before
    assert not lock_dirs()


def test_8_7_3_sets_up_a_region_other_than_us_east_1_through_its_endpoints(
    machine: Machine, tarballs: TarballServer, standin_files: StandinFiles, fresh_home: Path
):
    """8.7.3 has no region option: its -check-setup finds the stacks only where its URLs point."""
    write_aws_state(standin_files, regions=("eu-west-2",))
    program, _ = program_for(machine, tarballs, "8.7.3", regions=json.dumps(["eu-west-2"]))
    results = up(machine, program)
    assert "Your setup looks OK" in results["annex-client-check-setup-eu-west-2"].stderr
    destroy(machine, program)
