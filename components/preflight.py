"""Preflight: what the machine must have for the install, checked before anything is made anywhere."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.contract import CondorRelease
from components.machine import Machine, Step, machine_step


@dataclass
class PreflightArgs:
    machine: Machine
    release: CondorRelease
    tarball_url: str


class Preflight(pulumi.ComponentResource):
    """The tools the steps run and the release's tarball for this machine's platform; every other
    step and every AWS provider waits for it, so a machine that cannot take the install changes nothing."""

    ready: pulumi.Resource

    def __init__(self, name: str, args: PreflightArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("condor-annex:machine:Preflight", name, None, opts)
        release = args.release
        self.ready = machine_step(
            args.machine,
            Step(
                name=name,
                script="preflight.sh",
                values={
                    "CONDOR_VERSION": release.version,
                    "TARBALL_URL": args.tarball_url,
                    "PLATFORMS": " ".join(release.build_platforms),
                    "NEEDS_PYTHON3": "yes" if release.hpc_annex else "no",
                },
            ),
            parent=self,
        )
        self.register_outputs({})
