"""AnnexGuard: destroy starts by asking AWS for annexes still running, and deletes nothing while they do."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from components.contract import CondorRelease
from components.machine import Machine, Step, machine_step

# How long an `end` destroy waits for the lease functions: their rules fire every 5 minutes.
END_WAIT_SECONDS = 900
ON_DESTROY_CHOICES = ("refuse", "end", "leave")


@dataclass
class AnnexGuardArgs:
    machine: Machine
    release: CondorRelease
    install_dir: str
    regions: list[str]
    # annexesOnDestroy: refuse, end or leave.
    on_destroy: str
    # Everything else of the stack: the guard is made after all of it, so destroy undoes it first.
    after: Sequence[pulumi.Resource]


class AnnexGuard(pulumi.ComponentResource):
    """One step that every other waits behind on destroy: it runs the user's own condor_annex -status."""

    def __init__(self, name: str, args: AnnexGuardArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("condor-annex:machine:AnnexGuard", name, None, opts)
        release = args.release
        machine_step(
            args.machine,
            Step(
                name=name,
                script="annex_guard.sh",
                values={
                    "INSTALL_DIR": args.install_dir,
                    # From 24.11 condor_annex is in libexec, behind `htcondor annex`, which cannot list
                    # an account's annexes; the binary itself can, as on every line before.
                    "ANNEX_TOOL": "libexec" if release.hpc_annex else "condor_annex",
                    "REGIONS": " ".join(args.regions),
                    "REGION_OPTION": "yes" if release.region_prefixed_knobs else "no",
                    "ON_DESTROY": args.on_destroy,
                    "END_WAIT": str(END_WAIT_SECONDS),
                },
                depends_on=list(args.after),
            ),
            parent=self,
        )
        self.register_outputs({})
