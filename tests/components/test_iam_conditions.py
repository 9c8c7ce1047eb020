"""Every step of the lease-function escalation and every route between two users that only an IAM
condition closes, tried with each key and decided with the conditions evaluated
(tests/iam_simulator.py: moto cannot evaluate them).

Two stacks in one account, as a lab runs them: the first user's (A) and a colleague's that joins it
(B). The policies are the ones the program registers under mocks. Each route is a call a user could
make with their annex key, or that a function or an annex could make with its role, and each has the
decision IAM must reach. The calls `condor_annex` and the lease functions make are allowed alongside,
so a policy that denied everything would fail here too. One route stays open, as the README says: a
colleague's key may remove your annex's rule (condor_annex names rules after annexes, on the
account's default bus, and tags none), and this test holds that statement to the policies; where
every user sets `annexNamePrefix`, it is closed too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from components.settings import PROJECT
from tests.harness import ACCOUNT_ID, JOIN, Program, first_users_setup, run_program
from tests.iam_simulator import ALLOWED, EXPLICITLY_DENIED, IMPLICITLY_DENIED, Principal, Request, decide

REGION = "us-east-1"
OTHER_REGION = "eu-west-1"
EC2 = f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}"
RULES = f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule"
SOMEONE_ELSES = f"{EC2}:instance/i-0123456789abcdef0"
LAUNCHED = f"{EC2}:instance/i-0fedcba9876543210"
TERMINATE = ("ec2:TerminateInstances", SOMEONE_ELSES)
PAYROLL = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:payroll"
# EventBridge, firing a rule's target; the function's own policy decides.
EVENTBRIDGE = Principal("events.amazonaws.com", [])
ANOTHER_ACCOUNT = "210987654321"
SPOT = "spotfleet.amazonaws.com"


@dataclass
class User:
    """One user's stack, as registered: its principals and the names its policies hold."""

    key: Principal
    lease_role: Principal
    instance_role: Principal
    odi_lease: str
    sfr_lease: str
    instance_profile: str
    instance_role_arn: str
    security_group: str
    key_pair: str
    bucket: str
    # Each lease function's resource policy: who may invoke it.
    invoke_policies: dict[str, dict]


def _policy(program: Program, name: str) -> dict:
    return json.loads(program.named(name).inputs["policy"])


def _invoke_policy(program: Program, contract: str) -> dict:
    """The statement Lambda writes into the function's policy for the registered permission (Lambda
    developer guide, resource-based policies: SourceAccount as StringEquals, SourceArn as ArnLike)."""
    permission = program.named(f"annex-{REGION}-functions-{contract}-invoke").inputs
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": permission["principal"]},
        "Action": permission["action"],
        "Resource": program.named(f"annex-{REGION}-functions-{contract}").outputs["arn"],
        "Condition": {
            "StringEquals": {"AWS:SourceAccount": permission["sourceAccount"]},
            "ArnLike": {"AWS:SourceArn": permission["sourceArn"]},
        },
    }
    return {"Version": "2012-10-17", "Statement": [statement]}


def _user(program: Program) -> User:
    managed = _policy(program, f"annex-user-{REGION}")
    (launch,) = [s for s in managed["Statement"] if s.get("Sid") == "LaunchAnnexInstances"]
    named = {part.split(":")[-1].split("/")[0]: part for part in launch["Resource"]}
    instance = [
        _policy(program, f"annex-{REGION}-instance-{part}")
        for part in ("config-download", "introspection")
        if any(r.name == f"annex-{REGION}-instance-{part}" for r in program.registrations)
    ]
    return User(
        key=Principal(program.named("annex-user").outputs["arn"], [managed, _policy(program, "annex-user-policy")]),
        lease_role=Principal(
            program.named(f"annex-{REGION}-functions-lease-role").outputs["arn"],
            [_policy(program, f"annex-{REGION}-functions-lease-policy")],
        ),
        instance_role=Principal(program.named(f"annex-{REGION}-instance-role").outputs["arn"], instance),
        odi_lease=program.named(f"annex-{REGION}-functions-odiLease").outputs["arn"],
        sfr_lease=program.named(f"annex-{REGION}-functions-sfrLease").outputs["arn"],
        instance_profile=program.named(f"annex-{REGION}-instance-profile").outputs["arn"],
        instance_role_arn=program.named(f"annex-{REGION}-instance-role").outputs["arn"],
        security_group=named["security-group"],
        key_pair=named["key-pair"],
        bucket=program.named(f"annex-{REGION}-config").outputs["bucket"],
        invoke_policies={
            program.named(f"annex-{REGION}-functions-{contract}").outputs["arn"]: _invoke_policy(program, contract)
            for contract in ("odiLease", "sfrLease")
        },
    )


def routes(a: User, b: User) -> list[tuple[str, Request, str]]:
    """Each route: what it tries, the request, and IAM's decision it must get."""
    rule, rule_on_a_custom_bus = f"{RULES}/my-annex", f"{RULES}/orders/my-annex"
    a_tarball, b_tarball = (f"arn:aws:s3:::{user.bucket}/config-my-annex.tar.gz" for user in (a, b))
    spot_fleet_role = f"arn:aws:iam::{ACCOUNT_ID}:role/aws-ec2-spot-fleet-tagging-role"
    to_ec2, to_lambda = "ec2.amazonaws.com", "lambda.amazonaws.com"
    at_launch = {"ec2__CreateAction": "RunInstances"}
    denied, refused, allowed = IMPLICITLY_DENIED, EXPLICITLY_DENIED, ALLOWED
    return [
        # The escalation chain, step by step, with A's key; each step closed on its own.
        ("A's key tags an instance that is already running", a.key.asks("ec2:CreateTags", SOMEONE_ELSES), denied),
        (
            "A's key tags an instance as RunInstances makes it",
            a.key.asks("ec2:CreateTags", LAUNCHED, **at_launch),
            allowed,
        ),
        ("A's key makes a lease rule on the default bus", a.key.asks("events:PutRule", rule), allowed),
        ("A's key makes a rule on a custom bus", a.key.asks("events:PutRule", rule_on_a_custom_bus), refused),
        ("A's key aims a rule at its odiLease", a.key.asks("events:PutTargets", rule, **aim(a.odi_lease)), allowed),
        ("A's key aims a rule at its sfrLease", a.key.asks("events:PutTargets", rule, **aim(a.sfr_lease)), allowed),
        ("A's key aims a rule elsewhere", a.key.asks("events:PutTargets", rule, **aim(PAYROLL)), denied),
        ("A's key aims one call at both", a.key.asks("events:PutTargets", rule, **aim(a.odi_lease, PAYROLL)), denied),
        (
            "A's key aims a custom bus's rule",
            a.key.asks("events:PutTargets", rule_on_a_custom_bus, **aim(a.odi_lease)),
            refused,
        ),
        ("A's key invokes its lease function", a.key.asks("lambda:InvokeFunction", a.odi_lease), denied),
        ("A's key changes its lease function", a.key.asks("lambda:UpdateFunctionCode", a.odi_lease), denied),
        ("A's key ends an instance", a.key.asks("ec2:TerminateInstances", SOMEONE_ELSES), denied),
        # Who may fire A's lease function: this account's rules, through EventBridge.
        ("A's lease rule fires A's odiLease", fires(a.odi_lease, rule), allowed),
        (
            "another account's rule fires A's odiLease",
            fires(a.odi_lease, f"arn:aws:events:{REGION}:{ANOTHER_ACCOUNT}:rule/my-annex", ANOTHER_ACCOUNT),
            denied,
        ),
        # What A's lease functions may end and delete: only what A's annexes are and hold.
        ("A's lease role ends A's annex", a.lease_role.asks(*TERMINATE, **profile(a.instance_profile)), allowed),
        ("A's lease role ends B's annex", a.lease_role.asks(*TERMINATE, **profile(b.instance_profile)), denied),
        ("A's lease role ends an instance without a profile", a.lease_role.asks(*TERMINATE), denied),
        ("A's lease role deletes A's tarball", a.lease_role.asks("s3:DeleteObject", a_tarball), allowed),
        ("A's lease role deletes B's tarball", a.lease_role.asks("s3:DeleteObject", b_tarball), denied),
        # Between colleagues: B's key, and B's annexes, against A's.
        ("B's key aims a rule at A's odiLease", b.key.asks("events:PutTargets", rule, **aim(a.odi_lease)), denied),
        ("B's key aims a rule at its odiLease", b.key.asks("events:PutTargets", rule, **aim(b.odi_lease)), allowed),
        ("B's key passes A's instance role", b.key.asks("iam:PassRole", a.instance_role_arn, **passed(to_ec2)), denied),
        ("B's key launches into A's group", b.key.asks("ec2:RunInstances", a.security_group), denied),
        ("B's key launches with A's key pair", b.key.asks("ec2:RunInstances", a.key_pair), denied),
        ("B's key uploads into A's bucket", b.key.asks("s3:PutObject", a_tarball), denied),
        ("B's annex reads A's tarball", b.instance_role.asks("s3:GetObject", a_tarball), denied),
        ("A's annex reads its own tarball", a.instance_role.asks("s3:GetObject", a_tarball), allowed),
        ("B's key removes A's lease rule (README: known)", b.key.asks("events:DeleteRule", rule), allowed),
        # What else the key's conditions pin.
        ("A's key passes its role to EC2", a.key.asks("iam:PassRole", a.instance_role_arn, **passed(to_ec2)), allowed),
        (
            "A's key passes its role to Lambda",
            a.key.asks("iam:PassRole", a.instance_role_arn, **passed(to_lambda)),
            denied,
        ),
        (
            "A's key passes the fleet role to Spot Fleet",
            a.key.asks("iam:PassRole", spot_fleet_role, **passed(SPOT)),
            allowed,
        ),
        (
            "A's key passes the fleet role to Lambda",
            a.key.asks("iam:PassRole", spot_fleet_role, **passed(to_lambda)),
            denied,
        ),
        (
            "A's key lists its region's instances",
            a.key.asks("ec2:DescribeInstances", "*", **in_region(REGION)),
            allowed,
        ),
        ("A's key lists another region's", a.key.asks("ec2:DescribeInstances", "*", **in_region(OTHER_REGION)), denied),
    ]


def fires(function: str, rule: str, account: str = ACCOUNT_ID) -> Request:
    return EVENTBRIDGE.asks("lambda:InvokeFunction", function, aws__SourceArn=rule, aws__SourceAccount=account)


def aim(*functions: str) -> dict[str, list[str]]:
    return {"events__TargetArn": list(functions)}


def profile(arn: str) -> dict[str, str]:
    return {"ec2__InstanceProfile": arn}


def passed(service: str) -> dict[str, str]:
    return {"iam__PassedToService": service}


def in_region(region: str) -> dict[str, str]:
    return {"aws__RequestedRegion": region}


def decisions(a: User, b: User, tried: list[tuple[str, Request, str]]) -> dict[str, tuple[str, str]]:
    """Each route's decision, and the one it must get."""
    principals = [a.key, a.lease_role, a.instance_role, b.key, b.lease_role, b.instance_role, EVENTBRIDGE]
    got = decide(principals, [request for _, request, _ in tried], a.invoke_policies | b.invoke_policies)
    assert len({label for label, _, _ in tried}) == len(tried), "two routes of one name"
    return {label: (decision, expected) for (label, _, expected), decision in zip(tried, got, strict=True)}


def wrong(decided: dict[str, tuple[str, str]]) -> str:
    return json.dumps({label: got for label, (got, expected) in decided.items() if got != expected}, indent=1)


def test_each_route_gets_the_decision_iam_must_reach():
    a = _user(run_program(stack="first"))
    b = _user(run_program(JOIN, stack="second", account={REGION: first_users_setup()}))
    assert wrong(decisions(a, b, routes(a, b))) == "{}"


def test_with_annex_name_prefixes_no_key_touches_a_colleagues_lease_rules():
    """The README's known route, closed where each user sets annexNamePrefix: the rule of the annex
    A's `annexCommands` start (condor_annex names it after the annex's first 27 characters) is A's
    key's and A's lease functions' alone."""
    first = run_program({f"{PROJECT}:annexNamePrefix": "alice-"}, stack="first")
    second = run_program(
        {**JOIN, f"{PROJECT}:annexNamePrefix": "bob-"}, stack="second", account={REGION: first_users_setup()}
    )
    a, b = _user(first), _user(second)
    start = first.outputs["annexCommands"].value[REGION]["start"]
    annex = re.search(r"\S*ANNEX_NAME", start).group().replace("ANNEX_NAME", "MyFirstAnnex")
    a_rule, b_rule, unprefixed = f"{RULES}/{annex[:27]}", f"{RULES}/bob-MyFirstAnnex", f"{RULES}/MyFirstAnnex"
    assert annex == "alice-MyFirstAnnex"
    denied, allowed = IMPLICITLY_DENIED, ALLOWED
    tried = [
        ("A's key makes its annex's rule", a.key.asks("events:PutRule", a_rule), allowed),
        ("A's key aims it at its odiLease", a.key.asks("events:PutTargets", a_rule, **aim(a.odi_lease)), allowed),
        ("A's key makes a rule without its prefix", a.key.asks("events:PutRule", unprefixed), denied),
        ("B's key removes A's rule", b.key.asks("events:DeleteRule", a_rule), denied),
        ("B's key removes A's rule's target", b.key.asks("events:RemoveTargets", a_rule), denied),
        ("B's key makes a rule of A's annex's name", b.key.asks("events:PutRule", a_rule), denied),
        ("B's key aims A's rule at its odiLease", b.key.asks("events:PutTargets", a_rule, **aim(b.odi_lease)), denied),
        ("B's key makes its own annex's rule", b.key.asks("events:PutRule", b_rule), allowed),
        ("A's lease role removes A's rule", a.lease_role.asks("events:DeleteRule", a_rule), allowed),
        ("A's lease role removes B's rule", a.lease_role.asks("events:DeleteRule", b_rule), denied),
        ("B's lease role removes A's rule", b.lease_role.asks("events:DeleteRule", a_rule), denied),
        ("A's annex's rule fires A's odiLease", fires(a.odi_lease, a_rule), allowed),
        ("B's annex's rule fires A's odiLease", fires(a.odi_lease, b_rule), denied),
    ]
    assert wrong(decisions(a, b, tried)) == "{}"
