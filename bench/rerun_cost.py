"""What a repeated `pulumi up` costs on the machine: the commands whose inputs change.

The command provider runs a command again exactly when its inputs differ from the last run's, so
two evaluations under mocks (tests/harness.py) tell which would run: with the same config, with a
new pool password, with a region added to or removed from `regions`, with the only region
swapped for another, and with the annex user's key rotated (annexKeyGeneration raised). It also
counts the AWS resources created, changed or deleted, and which of them are not the added or
removed region's own.

    .venv/bin/python bench/rerun_cost.py
"""

from __future__ import annotations

import json

from common import machine_description, table

from tests.harness import PROJECT, run_program

ONE = {f"{PROJECT}:regions": json.dumps(["us-east-1"])}
TWO = {f"{PROJECT}:regions": json.dumps(["us-east-1", "eu-west-2"])}
CASES = [
    ("same config", ONE, ONE, "0", ""),
    (
        "new pool password",
        ONE,
        {**ONE, f"{PROJECT}:poolPassword": "a-new-pool-password-19"},
        "the store and the restart",
        "",
    ),
    ("add a region", ONE, TWO, "its key pair and check, the user_config blocks, and the guard", "eu-west-2"),
    ("remove a region", TWO, ONE, "its key pair and check, the user_config blocks, and the guard", "eu-west-2"),
    ("swap the only region", ONE, {f"{PROJECT}:regions": json.dumps(["eu-west-1"])}, "every region step", ""),
    (
        "rotate the annex key",
        ONE,
        {**ONE, f"{PROJECT}:annexKeyGeneration": "2"},
        "the key files and each check; the new key made, the old deleted",
        "",
    ),
]


def main() -> None:
    rows = []
    for label, before_config, after_config, goal, region in CASES:
        before, after = run_program(before_config), run_program(after_config)
        changed = after.changed_from(before)
        aws = after.changed_from(before, "aws:")
        others = [name for name in aws if region and region not in name]
        total = len(after.commands())
        rows.append(
            [
                label,
                f"{len(changed)} of {total}",
                ", ".join(changed) or "none",
                len(aws),
                ", ".join(others) or "none" if region else "",
                goal,
            ]
        )
    print(machine_description())
    print()
    headers = ["change", "commands run", "which", "AWS resources touched", "outside the region", "goal"]
    print(table(headers, rows))


if __name__ == "__main__":
    main()
