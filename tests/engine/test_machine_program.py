"""The machine-side program the engine tests run is the project's own machine side.

The engine tests cannot run the project's `__main__.py` through (no AWS provider here), so they run
tests/engine/machine_side, which wires the same components from the same config and takes the AWS
side's values as config. Both run here under mocks: for the same config, and the AWS values the
project itself made, every command must be the same, with the same inputs (so the same scripts,
values, stdin and connection) and the same commands before it.
"""

from __future__ import annotations

import json

import pytest

from tests.harness import (
    LOCAL_REACH,
    ROOT,
    SECRET_KEYS,
    SENTINEL_SECRET_KEY,
    Program,
    command_graph,
    run_program,
    secret_config,
)

MACHINE_PROGRAM = ROOT / "tests" / "engine" / "machine_side" / "__main__.py"


def machine_program(config: dict[str, str], project: Program) -> Program:
    """The machine-side program, given what the project's AWS side made for this config."""
    aws_side = {
        "aws-side:byRegion": json.dumps(project.outputs["byRegion"].value),
        "aws-side:accessKeyId": project.outputs["accessKeyId"].value,
        "aws-side:secretAccessKey": SENTINEL_SECRET_KEY,
    }
    return run_program(
        {**config, **aws_side}, source=MACHINE_PROGRAM, secret_keys=[*SECRET_KEYS, "aws-side:secretAccessKey"]
    )


@pytest.mark.parametrize(
    "config",
    [
        secret_config(),
        {**secret_config(), "condor-annex:condorVersion": "8.7.3"},
        {"condor-annex:regions": '["us-east-1", "eu-west-2"]', "condor-annex:annexImageId": "ami-0123456789abcdef0"},
        LOCAL_REACH,
    ],
    ids=["ssh", "8.7.3", "two-regions", "local"],
)
def test_the_machine_program_runs_the_projects_own_commands(config: dict[str, str]):
    project = run_program(config)
    machine_side = machine_program(config, project)
    assert command_graph(machine_side) == command_graph(project)
