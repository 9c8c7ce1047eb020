"""parliament (duo-labs' IAM linter) on every IAM policy document the program produces."""

from __future__ import annotations

import pytest
from parliament import analyze_policy_string

from tests.harness import run_program

POLICY_INPUTS = {
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/userPolicy:UserPolicy": "policy",
}


def documents() -> list[tuple[str, str]]:
    program = run_program()
    return [
        (registration.name, registration.inputs[key])
        for registration in program.registrations
        for type_, key in POLICY_INPUTS.items()
        if registration.type == type_
    ]


@pytest.mark.parametrize("name, document", documents(), ids=[name for name, _ in documents()])
def test_parliament_finds_nothing(name: str, document: str):
    findings = analyze_policy_string(document).findings
    assert not findings, f"{name}: " + "; ".join(f"{f.issue} {f.detail} {f.location}" for f in findings)
