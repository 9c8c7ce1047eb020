"""The longest chain of resources a fresh `pulumi up` must create one after another.

Evaluates the program under mocks (tests/harness.py records every registration with the
dependencies the engine would get, a dependency on a component standing for every resource under
it) and walks the graph. Prints the chain's length in AWS resources and in SSH commands beside the
totals, and the same for the original: the guide's manual install, then `condor_annex -setup`'s
four stacks one after another, its key pair and its config file.

    .venv/bin/python bench/critical_path.py
"""

from __future__ import annotations

from common import machine_description, table

from tests.harness import PROJECT, Registration, run_program

COMMAND = "command:remote:Command"

# The original, in order; each waits for the one before. AWS entries are the resources inside each
# CloudFormation stack that wait for one another (a function waits for its role, a profile for its
# role); condor_annex waits for each stack to finish before it creates the next.
ORIGINAL = [
    ("ssh", "download and unpack the tarball"),
    ("ssh", "make-personal-from-tarball"),
    ("ssh", "edit condor_config.local (interface, password, port)"),
    ("ssh", "condor_store_cred"),
    ("ssh", "condor_master, then the guide's checks"),
    ("ssh", "write ~/.condor/publicKeyFile and privateKeyFile"),
    ("aws", "HTCondorAnnex-ConfigurationBucket: bucket"),
    ("aws", "HTCondorAnnex-LambdaFunctions: role"),
    ("aws", "HTCondorAnnex-LambdaFunctions: functions"),
    ("aws", "HTCondorAnnex-InstanceProfile: role"),
    ("aws", "HTCondorAnnex-InstanceProfile: profile"),
    ("aws", "HTCondorAnnex-SecurityGroup: group"),
    ("aws", "key pair"),
    ("ssh", "write user_config"),
    ("ssh", "condor_annex -check-setup"),
]


def kind(registration: Registration) -> str:
    if registration.type == COMMAND:
        return "ssh"
    assert registration.type.startswith("aws:"), registration.type
    return "aws"


def count(links: list[Registration], of_kind: str) -> int:
    return sum(1 for link in links if kind(link) == of_kind)


def main() -> None:
    program = run_program()
    # Components group resources and providers configure them: neither calls AWS or the machine.
    resources = [r for r in program.registrations if not r.type.startswith((f"{PROJECT}:", "pulumi:providers:"))]
    critical = max((program.longest_chain(r) for r in resources), key=len)
    totals = {k: sum(1 for r in resources if kind(r) == k) for k in ("aws", "ssh")}
    original = {k: sum(1 for of_kind, _ in ORIGINAL if of_kind == k) for k in ("aws", "ssh")}

    print(machine_description())
    print()
    print(
        table(
            ["", "this program", "original (guide, then condor_annex -setup)"],
            [
                ["AWS resources, total", totals["aws"], f"{original['aws']} (4 stacks and a key pair)"],
                ["machine-side commands, total", totals["ssh"], original["ssh"]],
                ["longest chain, links", len(critical), len(ORIGINAL)],
                ["  of which AWS resources", count(critical, "aws"), original["aws"]],
                ["  of which machine-side commands", count(critical, "ssh"), original["ssh"]],
            ],
        )
    )
    print()
    rows = []
    for step in (r for r in resources if kind(r) == "ssh"):
        before = program.longest_chain(step)[:-1]
        rows.append([step.name, count(before, "aws"), count(before, "ssh"), len(before)])
    print(table(["SSH step", "AWS resources before it", "SSH commands before it", "links before it"], rows))
    print()
    print("longest chain: " + " -> ".join(link.name for link in critical))


if __name__ == "__main__":
    main()
