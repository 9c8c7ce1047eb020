"""parliament (duo-labs' IAM linter) on every IAM policy document the program produces."""

from __future__ import annotations

import json

import parliament.statement
import pytest
from parliament import analyze_policy_string

from tests.harness import JOIN, first_users_setup, run_program

# Every input of every resource type the program registers that holds an IAM policy document.
POLICY_INPUTS = {
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/userPolicy:UserPolicy": "policy",
    "aws:iam/policy:Policy": "policy",
    "aws:iam/role:Role": "assumeRolePolicy",
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
}


def _is_trust_policy(document: str) -> bool:
    statements = json.loads(document)["Statement"]
    return all("Principal" in statement and statement["Action"] == "sts:AssumeRole" for statement in statements)


# parliament reads every document as an identity policy; a role's trust policy must name a
# Principal and may not have a Resource, so this one finding there is AWS's rule, not a defect.
TRUST_POLICY_FINDING = "Statement contains neither Resource nor NotResource"


@pytest.fixture(autouse=True)
def parliament_knows_arrays_of_arns(monkeypatch: pytest.MonkeyPatch) -> None:
    """parliament 1.6.4's own IAM data types events:TargetArn `ArrayOfARN`, which its type check
    does not know (it raises "Unknown data format"): each value is checked as an ARN, as it checks
    ArrayOfString values as strings."""
    known = parliament.statement.translate_documentation_types
    monkeypatch.setattr(
        parliament.statement,
        "translate_documentation_types",
        lambda name: "Arn" if name == "ArrayOfARN" else known(name),
    )


def documents() -> list[tuple[str, str]]:
    """The first user's stack's documents, then those of a stack joining it (named `joining/...`)."""
    programs = {"": run_program(), "joining/": run_program(JOIN, account={"us-east-1": first_users_setup()})}
    return [
        (f"{prefix}{registration.name}", registration.inputs[key])
        for prefix, program in programs.items()
        for registration in program.registrations
        for type_, key in POLICY_INPUTS.items()
        if registration.type == type_
    ]


def test_every_kind_of_policy_is_linted():
    """An empty list would make the test below a skip, not a failure."""
    linted_types = {
        registration.type
        for registration in run_program().registrations
        if registration.type in POLICY_INPUTS and registration.inputs.get(POLICY_INPUTS[registration.type])
    }
    assert linted_types == set(POLICY_INPUTS)
    assert len(documents()) >= 9


@pytest.mark.parametrize("name, document", documents(), ids=[name for name, _ in documents()])
def test_parliament_finds_nothing(name: str, document: str):
    findings = analyze_policy_string(document).findings
    if _is_trust_policy(document):
        findings = [finding for finding in findings if finding.detail != TRUST_POLICY_FINDING]
    assert not findings, f"{name}: " + "; ".join(f"{f.issue} {f.detail} {f.location}" for f in findings)
