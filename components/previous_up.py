"""What this stack's last `pulumi up` exported, and what it holds the next up to.

The program reads its own stack's outputs through the engine's built-in
`pulumi:pulumi:readStackOutputs` (what a StackReference reads), before any resource is registered.
Checked with the real engine (the pulumi v3.274.1 CLI, a file backend): a new stack reads `{}`, in a
preview and in an up; a later up reads the outputs of the last up that finished. Only plain outputs
are used here; the secret ones come back decrypted and are never touched.

In an up, the engine writes the stack's checkpoint while the program starts, and a file backend
(gocloud's fileblob, pulumi v3.274.1) rewrites the checkpoint's `.attrs` sidecar in place: a read
that lands in between fails with "failed to load checkpoint: EOF" (seen once in CI). That read is
tried again; the race lasts microseconds.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

import pulumi

from components.settings import MAX_REGIONS, PROJECT, ConfigError


@dataclass(frozen=True)
class PreviousUp:
    """The regions the last up set up, and the region its account-wide resources went through."""

    regions: list[str]
    account_region: str | None

    def added(self, regions: list[str]) -> list[str]:
        """The regions of this up that the last one did not set up."""
        return [region for region in regions if region not in self.regions]


# Reads of the stack's own checkpoint before giving up, each after a pause of about PAUSE_SECONDS.
READ_ATTEMPTS = 20
PAUSE_SECONDS = 0.1
CHECKPOINT_RACE = "failed to load checkpoint"


def last_outputs(name: str) -> dict[str, Any]:
    """What the stack `name` last exported, read again while the engine is writing its checkpoint."""
    attempt = 1
    while True:
        try:
            return pulumi.runtime.invoke("pulumi:pulumi:readStackOutputs", {"name": name}).value.get("outputs") or {}
        except Exception as error:  # the SDK raises a bare Exception for a failed invoke
            if CHECKPOINT_RACE not in str(error):
                raise
            if attempt == READ_ATTEMPTS:
                raise pulumi.RunError(
                    f"could not read what this stack's last `pulumi up` exported, {READ_ATTEMPTS} times: {error}. "
                    "Check that the backend (PULUMI_BACKEND_URL) is reachable and its stack file intact"
                ) from error
        attempt += 1
        # Jitter: a fixed pause could fall into step with the writer each time.
        time.sleep(random.uniform(0.5, 1.5) * PAUSE_SECONDS)  # noqa: S311 (a pause, not a secret)


def previous_up() -> PreviousUp:
    outputs = last_outputs(f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}")
    regions = outputs.get("regions")
    # A stack made before `regions` existed exported only `region`, its one region; before
    # `accountRegion` existed, the account-wide resources went through the first region's provider.
    if not isinstance(regions, list):
        regions = [outputs["region"]] if isinstance(outputs.get("region"), str) else []
    account_region = outputs.get("accountRegion") or outputs.get("region")
    return PreviousUp(regions=regions, account_region=account_region if isinstance(account_region, str) else None)


def account_region(previous: PreviousUp, regions: list[str]) -> str:
    """The region the account-wide resources (the annex user, its key and policies) go through:
    the first region of the stack's first up, for good. IAM is global, but a provider whose region
    changes replaces every resource it manages (pulumi/pulumi-aws#4000)."""
    return previous.account_region or regions[0]


def refuse_too_many_policies_at_once(previous: PreviousUp, regions: list[str]) -> None:
    """The up attaches each new region's policy to the annex user before it detaches a dropped
    region's; IAM refuses an 11th (10 managed policies per user, IAM quotas), part-way through."""
    added = previous.added(regions)
    attached_at_once = previous.regions + added
    if len(attached_at_once) <= MAX_REGIONS:
        return
    dropped = [region for region in previous.regions if region not in regions]
    raise ConfigError(
        f"{PROJECT}:regions adds {', '.join(added)} while {', '.join(dropped)} still hold(s) their policies: the "
        f"annex user would hold {len(attached_at_once)} managed policies at once, and IAM attaches at most "
        f"{MAX_REGIONS} to a user. Nothing was changed. Drop {', '.join(dropped)} from regions and `pulumi up`, "
        "then add the new ones and `pulumi up` again"
    )
