"""LeaseFunctions: one user's lease enforcers and the connectivity check condor_annex invokes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.contract import CONNECTIVITY_FUNCTION_NAME, bucket_config_objects
from components.policy import document, trust

LAMBDA_SOURCE = Path(__file__).resolve().parent.parent / "lambda_src"
RUNTIME = "python3.13"
LEASE_FUNCTIONS = {
    # contract name -> (function name, handler)
    "odiLease": ("HTCondorAnnex-odiLease", "lease.odi_handler"),
    "sfrLease": ("HTCondorAnnex-sfrLease", "lease.sfr_handler"),
}


def lease_function_name(contract: str, owner: str | None = None) -> str:
    """The setup's own functions keep condor_annex -setup's names; a joining user's own get a suffix
    of their stack's (Lambda: at most 64 characters, whatever the stack's name)."""
    function = LEASE_FUNCTIONS[contract][0]
    return function if owner is None else f"{function}-{hashlib.sha256(owner.encode()).hexdigest()[:12]}"


def lambda_archive() -> pulumi.AssetArchive:
    """The handler modules only: no caches, tests or anything else that sits beside them."""
    return pulumi.AssetArchive({path.name: pulumi.FileAsset(str(path)) for path in sorted(LAMBDA_SOURCE.glob("*.py"))})


@dataclass
class LeaseFunctionsArgs:
    region: str
    account_id: pulumi.Input[str]
    bucket_name: pulumi.Input[str]
    # The user's instance profile: the functions end only instances and fleets launched with it.
    instance_profile_arn: pulumi.Input[str]
    log_retention_days: int
    # A joining user's "<project>/<stack>": the functions are theirs alone, named apart, and the
    # connectivity function, fixed by name, stays the setup's.
    joining_owner: str | None = None
    # What the user's annex names begin with: the functions remove only lease rules named so.
    annex_name_prefix: str = ""
    tags: dict[str, str] = field(default_factory=dict)


class LeaseFunctions(pulumi.ComponentResource):
    """odiLease and sfrLease with their role, logs and permissions, and for the setup's owner
    HTCondorAnnex-CheckConnectivity. Each user's annex key may aim rules only at their own lease
    functions, and those end only instances with the user's instance profile: no user's key or
    lease reaches another's annexes.

    The ARNs it offers are known before the functions exist; wait on the component itself for that.
    """

    odi_lease_arn: pulumi.Output[str]
    sfr_lease_arn: pulumi.Output[str]
    connectivity_arn: pulumi.Output[str]

    def __init__(self, name: str, args: LeaseFunctionsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("condor-annex:aws:LeaseFunctions", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        code = lambda_archive()

        def log_group(function_name: str) -> aws.cloudwatch.LogGroup:
            # Created here rather than by Lambda on first run, so destroy removes it too.
            return aws.cloudwatch.LogGroup(
                f"{name}-{function_name}-logs",
                name=f"/aws/lambda/{function_name}",
                retention_in_days=args.log_retention_days,
                tags=args.tags,
                opts=child,
            )

        def arn(service: str, resource: str) -> pulumi.Output[str]:
            return pulumi.Output.format("arn:aws:{0}:{1}:{2}:{3}", service, args.region, args.account_id, resource)

        # The names are fixed, so the ARNs are known before anything exists: policies that name
        # these functions and their logs need not wait for them to be created.
        def log_writing(*function_names: str) -> dict:
            return {
                "Sid": "WriteOwnLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [arn("logs", f"log-group:/aws/lambda/{function}:*") for function in function_names],
            }

        names = {contract: lease_function_name(contract, args.joining_owner) for contract in LEASE_FUNCTIONS}
        lease_logs = {contract: log_group(function) for contract, function in names.items()}
        lease_role = aws.iam.Role(
            f"{name}-lease-role",
            assume_role_policy=trust("lambda.amazonaws.com"),
            # Stacks that joined this setup before they had lease functions of their own added a
            # policy here; IAM deletes no role that still has one.
            force_detach_policies=True,
            tags=args.tags,
            opts=child,
        )
        # Rules are named after annexes (annexNamePrefix, when set, begins every name of this user's).
        lease_rules = arn("events", f"rule/{args.annex_name_prefix}*")
        lease_policy = aws.iam.RolePolicy(
            f"{name}-lease-policy",
            role=lease_role.id,
            policy=document(
                log_writing(*names.values()),
                {
                    # The only rule calls the functions make: dropping the expired annex's rule, and
                    # on destroy every rule still aimed at them.
                    "Sid": "RemoveExpiredLeaseRules",
                    "Effect": "Allow",
                    "Action": ["events:RemoveTargets", "events:DeleteRule"],
                    "Resource": lease_rules,
                },
                {
                    # No resource-level permission (Service Authorization Reference, EventBridge).
                    "Sid": "FindRulesAimedAtThem",
                    "Effect": "Allow",
                    "Action": "events:ListRuleNamesByTarget",
                    "Resource": "*",
                },
                {
                    # Describe calls have no resource-level permissions.
                    "Sid": "FindAnnexResources",
                    "Effect": "Allow",
                    "Action": ["ec2:DescribeInstances", "ec2:DescribeSpotFleetRequests"],
                    "Resource": "*",
                },
                {
                    # Only instances launched with this user's instance profile, which no one can
                    # put on an instance already running without iam:PassRole for its role.
                    "Sid": "TerminateAnnexInstances",
                    "Effect": "Allow",
                    "Action": "ec2:TerminateInstances",
                    "Resource": arn("ec2", "instance/*"),
                    "Condition": {"ArnEquals": {"ec2:InstanceProfile": args.instance_profile_arn}},
                },
                {
                    "Sid": "CancelAnnexSpotFleets",
                    "Effect": "Allow",
                    "Action": "ec2:CancelSpotFleetRequests",
                    "Resource": arn("ec2", "spot-fleet-request/*"),
                },
                {
                    "Sid": "DeleteExpiredAnnexConfig",
                    "Effect": "Allow",
                    "Action": "s3:DeleteObject",
                    "Resource": pulumi.Output.from_input(args.bucket_name).apply(bucket_config_objects),
                },
            ),
            opts=child,
        )

        functions: dict[str, aws.lambda_.Function] = {}
        for contract, (_, handler) in LEASE_FUNCTIONS.items():
            functions[contract] = aws.lambda_.Function(
                f"{name}-{contract}",
                name=names[contract],
                runtime=RUNTIME,
                handler=handler,
                role=lease_role.arn,
                code=code,
                timeout=60,
                environment={
                    "variables": {"S3_BUCKET_NAME": args.bucket_name, "INSTANCE_PROFILE_ARN": args.instance_profile_arn}
                },
                logging_config={"log_format": "JSON", "log_group": lease_logs[contract].name},
                tags=args.tags,
                # Not after the role's policy: nothing invokes a lease function until condor_annex
                # makes an annex's rule, long after this `pulumi up`, so the two are made together.
                opts=child,
            )
            # When the function goes (destroy), its own handler deletes every rule still aimed at it.
            aws.lambda_.Invocation(
                f"{name}-{contract}-teardown",
                function_name=functions[contract].name,
                input=json.dumps({"teardown": "the rules aimed at this function, when it goes"}),
                lifecycle_scope="CRUD",
                opts=pulumi.ResourceOptions(parent=self, depends_on=[lease_policy]),
            )
            # condor_annex creates one rule per annex, named after it, and adds no permission of its
            # own: any rule of this account's default bus in this region may invoke the function.
            # Whose rules aim at it is the annex users' policies' business (events:TargetArn).
            aws.lambda_.Permission(
                f"{name}-{contract}-invoke",
                action="lambda:InvokeFunction",
                function=functions[contract].name,
                principal="events.amazonaws.com",
                source_account=args.account_id,
                source_arn=lease_rules,
                opts=child,
            )

        # The connectivity check only opens a TCP connection: a role of its own with logs alone.
        # condor_annex fixes its name, so a joining user uses the setup's.
        if args.joining_owner is None:
            connectivity_logs = log_group(CONNECTIVITY_FUNCTION_NAME)
            connectivity_role = aws.iam.Role(
                f"{name}-connectivity-role",
                assume_role_policy=trust("lambda.amazonaws.com"),
                tags=args.tags,
                opts=child,
            )
            aws.iam.RolePolicy(
                f"{name}-connectivity-policy",
                role=connectivity_role.id,
                policy=document(log_writing(CONNECTIVITY_FUNCTION_NAME)),
                opts=child,
            )
            aws.lambda_.Function(
                f"{name}-connectivity",
                name=CONNECTIVITY_FUNCTION_NAME,
                runtime=RUNTIME,
                handler="connectivity.handler",
                role=connectivity_role.arn,
                code=code,
                timeout=5,
                logging_config={"log_format": "JSON", "log_group": connectivity_logs.name},
                tags=args.tags,
                opts=child,
            )

        self.odi_lease_arn = arn("lambda", f"function:{names['odiLease']}")
        self.sfr_lease_arn = arn("lambda", f"function:{names['sfrLease']}")
        self.connectivity_arn = arn("lambda", f"function:{CONNECTIVITY_FUNCTION_NAME}")
        self.register_outputs(
            {
                "odi_lease_arn": self.odi_lease_arn,
                "sfr_lease_arn": self.sfr_lease_arn,
                "connectivity_arn": self.connectivity_arn,
            }
        )
