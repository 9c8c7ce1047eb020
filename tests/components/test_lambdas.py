import re
from pathlib import Path

import pytest

from components.contract import BOOT_SCRIPT_BUCKET_REGEX, CONNECTIVITY_FUNCTION_NAME
from tests.harness import ACCOUNT_ID, Program, policy, run_program, statements_by_sid


@pytest.fixture(scope="module")
def program() -> Program:
    return run_program({"condor-annex:logRetentionDays": "30"})


FUNCTIONS = {
    "annex-us-east-1-functions-odiLease": ("HTCondorAnnex-odiLease", "lease.odi_handler", 60),
    "annex-us-east-1-functions-sfrLease": ("HTCondorAnnex-sfrLease", "lease.sfr_handler", 60),
    "annex-us-east-1-functions-connectivity": (CONNECTIVITY_FUNCTION_NAME, "connectivity.handler", 5),
}


@pytest.mark.parametrize("resource", sorted(FUNCTIONS))
def test_function_names_runtimes_handlers(program: Program, resource: str):
    name, handler, timeout = FUNCTIONS[resource]
    function = program.named(resource)
    assert function.inputs["name"] == name, resource
    assert function.inputs["handler"] == handler, resource
    assert function.inputs["timeout"] == timeout, resource
    major, minor = map(int, re.fullmatch(r"python(\d+)\.(\d+)", function.inputs["runtime"]).groups())
    assert (major, minor) >= (3, 12), f"{resource}: {function.inputs['runtime']} is not a current runtime"


@pytest.mark.parametrize("resource", sorted(FUNCTIONS))
def test_archive_holds_the_handler_module(program: Program, resource: str):
    function = program.named(resource)
    module, _, attribute = FUNCTIONS[resource][1].partition(".")
    assets = function.inputs["code"].assets
    assert f"{module}.py" in assets, f"{resource}: archive lacks {module}.py ({sorted(assets)})"
    source = Path(assets[f"{module}.py"].path).read_text()
    assert f"def {attribute}(" in source, f"{resource}: {module}.py has no {attribute}"
    assert all(name.endswith(".py") for name in assets), f"{resource}: archive carries {sorted(assets)}"


def test_log_groups_created_with_retention_before_functions(program: Program):
    for resource, (name, _, _) in FUNCTIONS.items():
        group = program.named(f"annex-us-east-1-functions-{name}-logs")
        assert group.inputs["name"] == f"/aws/lambda/{name}"
        assert group.inputs["retentionInDays"] == 30
        assert group.urn in program.named(resource).dependencies, f"{resource} does not wait for its log group"


def test_lease_role_policy_is_narrow(program: Program):
    statements = statements_by_sid(policy(program.named("annex-us-east-1-functions-lease-policy")))
    events = statements["RemoveExpiredLeaseRules"]
    assert sorted(events["Action"]) == ["events:DeleteRule", "events:RemoveTargets"]
    assert events["Resource"] == f"arn:aws:events:us-east-1:{ACCOUNT_ID}:rule/*"
    # Only instances with the user's instance profile, which a tag cannot fake (ec2:InstanceProfile).
    profile = program.named("annex-us-east-1-instance-profile").outputs["arn"]
    assert statements["TerminateAnnexInstances"]["Condition"] == {"ArnEquals": {"ec2:InstanceProfile": profile}}
    bucket = program.named("annex-us-east-1-config").outputs["bucket"]
    assert statements["DeleteExpiredAnnexConfig"] == {
        "Sid": "DeleteExpiredAnnexConfig",
        "Effect": "Allow",
        "Action": "s3:DeleteObject",
        "Resource": f"arn:aws:s3:::{bucket}/config-*.tar.gz",
    }
    assert re.match(BOOT_SCRIPT_BUCKET_REGEX, statements["DeleteExpiredAnnexConfig"]["Resource"])
    every_action = [
        a for s in statements.values() for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]
    assert not any(action.endswith("*") for action in every_action), every_action


def test_connectivity_role_only_writes_its_logs(program: Program):
    (statement,) = policy(program.named("annex-us-east-1-functions-connectivity-policy"))["Statement"]
    assert statement["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    (log_group,) = statement["Resource"]
    logs = program.named(f"annex-us-east-1-functions-{CONNECTIVITY_FUNCTION_NAME}-logs")
    assert log_group == logs.outputs["arn"] + ":*"


def test_arns_known_before_creation_are_the_real_ones(program: Program):
    """The exported ARNs are computed from the fixed names; they must be what AWS assigns."""
    for output, resource in (
        ("odiLeaseFunctionArn", "annex-us-east-1-functions-odiLease"),
        ("sfrLeaseFunctionArn", "annex-us-east-1-functions-sfrLease"),
        ("connectivityFunctionArn", "annex-us-east-1-functions-connectivity"),
    ):
        assert program.outputs[output].value == program.named(resource).outputs["arn"], output
    lease_logs = statements_by_sid(policy(program.named("annex-us-east-1-functions-lease-policy")))["WriteOwnLogs"]
    assert lease_logs["Resource"] == [
        program.named(f"annex-us-east-1-functions-{name}-logs").outputs["arn"] + ":*"
        for name in ("HTCondorAnnex-odiLease", "HTCondorAnnex-sfrLease")
    ]


@pytest.mark.parametrize("contract", ["odiLease", "sfrLease"])
def test_events_may_invoke_lease_functions(program: Program, contract: str):
    permission = program.named(f"annex-us-east-1-functions-{contract}-invoke")
    assert permission.inputs["principal"] == "events.amazonaws.com"
    assert permission.inputs["action"] == "lambda:InvokeFunction"
    assert permission.inputs["sourceArn"] == f"arn:aws:events:us-east-1:{ACCOUNT_ID}:rule/*"
    assert permission.inputs["function"] == FUNCTIONS[f"annex-us-east-1-functions-{contract}"][0]


def test_lease_functions_know_their_bucket_and_the_users_instance_profile(program: Program):
    bucket = program.named("annex-us-east-1-config").outputs["bucket"]
    profile = program.named("annex-us-east-1-instance-profile").outputs["arn"]
    for resource in ("annex-us-east-1-functions-odiLease", "annex-us-east-1-functions-sfrLease"):
        variables = program.named(resource).inputs["environment"]["variables"]
        assert variables == {"S3_BUCKET_NAME": bucket, "INSTANCE_PROFILE_ARN": profile}
    statements = statements_by_sid(policy(program.named("annex-us-east-1-functions-lease-policy")))
    granted = [a for s in statements.values() for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    assert not any(action.startswith("iam:") for action in granted), granted
