"""CondorDir: the user's ~/.condor (and ~/.hpc-annex from 24.11), recorded or made before any other
step and put back after all."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.contract import CondorRelease
from components.machine import Machine, Step, machine_step

# `htcondor annex create` refuses to run without it (annex_create.py at v25.0.13).
HPC_ANNEX_DIR = "~/.hpc-annex"


@dataclass
class CondorDirArgs:
    machine: Machine
    release: CondorRelease
    # The machine's preflight: nothing is made here before it passes.
    preflight: pulumi.Resource


class CondorDir(pulumi.ComponentResource):
    """Every machine step waits for this one, so destroy undoes it last, when nothing writes to ~/.condor."""

    ready: pulumi.Resource

    def __init__(self, name: str, args: CondorDirArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("condor-annex:machine:CondorDir", name, None, opts)
        self.ready = machine_step(
            args.machine,
            Step(
                name=name,
                script="condor_dir.sh",
                values={"HPC_ANNEX_DIR": HPC_ANNEX_DIR if args.release.hpc_annex else ""},
                depends_on=[args.preflight],
            ),
            parent=self,
        )
        self.register_outputs({})
