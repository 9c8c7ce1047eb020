"""CondorDir: the user's ~/.condor, recorded (or made) before any other step and put back after all."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.machine import Machine, Step, machine_step


@dataclass
class CondorDirArgs:
    machine: Machine
    # The machine's preflight: nothing is made here before it passes.
    preflight: pulumi.Resource


class CondorDir(pulumi.ComponentResource):
    """Every machine step waits for this one, so destroy undoes it last, when nothing writes to ~/.condor."""

    ready: pulumi.Resource

    def __init__(self, name: str, args: CondorDirArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("condor-annex:machine:CondorDir", name, None, opts)
        self.ready = machine_step(
            args.machine, Step(name=name, script="condor_dir.sh", values={}, depends_on=[args.preflight]), parent=self
        )
        self.register_outputs({})
