"""IAM's decision on requests, conditions and all, from an evaluator that is not ours.

moto's IAM enforcement ignores the Condition element of identity policies (moto 5.2.5,
moto/iam/access_control.py: only sts:ExternalId is ever given a value, and an operator it does not
know counts as met), so the calls that only a condition denies cannot be tried there. These are
decided by @cloud-copilot/iam-simulate (tests/iam_simulate/package.json pins the version), which
implements AWS's policy evaluation logic with every condition operator, and checks each request
against AWS's Service Authorization Reference: that the action exists, that the resource is one
of its resource types, and that each context key is one the action takes, with its type. A request
it finds invalid fails the test; it never counts as a denial. Like every evaluator but AWS's own,
it is an imitation: what AWS documents (the policy evaluation logic, the condition operators and
each service's condition keys) is the contract it and these tests are held to.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.harness import ACCOUNT_ID

SIMULATOR = Path(__file__).parent / "iam_simulate"
INSTALL = f"npm ci --prefix {SIMULATOR}"

ALLOWED, IMPLICITLY_DENIED, EXPLICITLY_DENIED = "Allowed", "ImplicitlyDenied", "ExplicitlyDenied"


@dataclass(frozen=True)
class Request:
    """One API call as IAM authorizes it: who, which action on which resource, and the request's
    context keys (as AWS's Service Authorization Reference lists them for the action)."""

    principal: str
    action: str
    resource: str
    context: dict[str, str | list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Principal:
    """An IAM identity and every policy it holds."""

    arn: str
    policies: list[dict[str, Any]]

    def asks(self, action: str, resource: str, **context: str | list[str]) -> Request:
        """A request; context keys are given with `__` for `:` (ec2__CreateAction)."""
        return Request(self.arn, action, resource, {key.replace("__", ":"): value for key, value in context.items()})


def decide(
    principals: list[Principal], requests: list[Request], resource_policies: dict[str, dict[str, Any]] | None = None
) -> list[str]:
    """IAM's decision on each request, made by its principal's policies and its resource's policy,
    where `resource_policies` (by resource ARN) holds one."""
    resource_policies = resource_policies or {}
    if shutil.which("node") is None or not (SIMULATOR / "node_modules").is_dir():
        raise RuntimeError(f"the IAM simulator is not installed: {INSTALL} (.ci/run does it; Node.js 18 or later)")
    held = {principal.arn: principal.policies for principal in principals}
    simulations = [
        {
            "identityPolicies": [
                {"name": f"policy-{number}", "policy": policy} for number, policy in enumerate(held[request.principal])
            ],
            "request": {
                "principal": request.principal,
                "action": request.action,
                "resource": {"accountId": ACCOUNT_ID, "resource": request.resource},
                "contextVariables": request.context,
            },
            **(
                {"resourcePolicy": resource_policies[request.resource]} if request.resource in resource_policies else {}
            ),
        }
        for request in requests
    ]
    ran = subprocess.run(
        ["node", str(SIMULATOR / "simulate.mjs")],
        input=json.dumps(simulations),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    answers = json.loads(ran.stdout)
    invalid = [(asked, answer["error"]) for asked, answer in zip(requests, answers, strict=True) if "error" in answer]
    assert not invalid, f"requests the simulator finds invalid, so decided nothing: {invalid}"
    return [answer["decision"] for answer in answers]
