"""What a repeated `pulumi up` costs on the machine: the remote commands whose inputs change.

The command provider runs a command again exactly when its inputs differ from the last run's, so
two evaluations under mocks (tests/harness.py) tell which would run: with the same config, with a
new pool password, and with a new AWS region. It also counts the AWS resources whose own inputs
change; a new region also changes the AWS provider's, so there every AWS resource is made anew.

    .venv/bin/python bench/rerun_cost.py
"""

from __future__ import annotations

from common import machine_description, table

from tests.harness import PROJECT, run_program

CASES = [
    ("same config", {}, "0"),
    ("new pool password", {f"{PROJECT}:poolPassword": "a-new-pool-password-19"}, "the store and the restart"),
    ("new AWS region", {"aws:region": "eu-west-1"}, "the client steps that name the region"),
]


def main() -> None:
    baseline = run_program()
    total = len(baseline.commands())
    rows = []
    for label, config, goal in CASES:
        after = run_program(config)
        changed = after.changed_from(baseline)
        aws = len(after.changed_from(baseline, "aws:"))
        rows.append([label, f"{len(changed)} of {total}", ", ".join(changed) or "none", aws, goal])
    print(machine_description())
    print()
    print(table(["change", "remote commands re-run", "which", "AWS resources with new inputs", "goal"], rows))


if __name__ == "__main__":
    main()
