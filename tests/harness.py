"""Run the whole Pulumi program under mocks and record what it registers.

The stock mock monitor does not mark a provider's declared secret outputs (AccessKey.secret) as
secret, nor `additionalSecretOutputs`; the engine does both, so the monitor here does too, or
secret tests would pass for the wrong reason.
"""

from __future__ import annotations

import base64
import hashlib
import json
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from unittest import mock

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.sync_await import _sync_await

from components import host_key
from components.contract import CONNECTIVITY_FUNCTION_NAME, KEY_PAIR_NAME, SECURITY_GROUP_STACK, STACK_NAMES
from components.host_key import HostKey

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "__main__.py"
PROJECT = "condor-annex"

SENTINEL_SECRET_KEY = "SENTINEL-aws-secret-key-7f3a"
ACCOUNT_ID = "123456789012"


def default_vpc_id(region: str) -> str:
    """Each region has its own default VPC."""
    return f"vpc-{hashlib.sha256(region.encode()).hexdigest()[:17]}"


# What the real providers' schemas declare secret; the engine marks these whatever the program says.
PROVIDER_SECRET_OUTPUTS = {
    "aws:iam/accessKey:AccessKey": {"secret", "sesSmtpPasswordV4"},
}

# The machine's host key, pinned: no test reads the known_hosts of whoever runs it.
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAai6gPahF04cQCGF76ki7OmuRulu8RDvtkqFFLZE8zW"
BASE_CONFIG = {
    "aws:region": "us-east-1",
    f"{PROJECT}:host": "203.0.113.7",
    f"{PROJECT}:sshUser": "annex",
    f"{PROJECT}:sshHostKey": HOST_KEY,
    f"{PROJECT}:poolPassword": "SENTINEL-pool-password-5d1e",
}
SECRET_KEYS = [f"{PROJECT}:poolPassword", f"{PROJECT}:sshPrivateKey"]
# The config overlay for the machine itself (host localhost): no SSH keys, and the ingress an unnamed
# public address needs.
LOCAL_REACH: dict[str, str | None] = {
    f"{PROJECT}:host": "localhost",
    f"{PROJECT}:sshUser": None,
    f"{PROJECT}:sshPrivateKey": None,
    f"{PROJECT}:sshHostKey": None,
    f"{PROJECT}:condorIngressCidrs": '["203.0.113.7/32"]',
    f"{PROJECT}:sshIngressCidrs": "[]",
}


@dataclass
class Registration:
    """One resource as the engine would have received it."""

    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    secret_inputs: set[str]
    parent: str
    dependencies: list[str]
    delete_before_replace: bool
    retain_on_delete: bool
    protect: bool
    additional_secret_outputs: list[str]
    urn: str = ""
    # For AWS resources: the region of the provider that manages it ("" for the default provider).
    region: str = ""
    # Its aliases as URNs, when the SDK was made to resolve them (`run_program(resolve_aliases=True)`).
    aliases: list[str] = field(default_factory=list)
    # The URN of its explicit provider: the engine creates it only once the provider is there.
    provider: str = ""
    # Each input's dependencies, by input name: what the engine reads to undo dependents first.
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    replace_on_changes: list[str] = field(default_factory=list)
    # The resource option's value (None: not set); a change of it replaces the resource.
    replacement_trigger: Any = None


@dataclass
class StackOutput:
    value: Any
    secret: bool


@dataclass
class Program:
    registrations: list[Registration] = field(default_factory=list)
    outputs: dict[str, StackOutput] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)
    # (token, region of the provider asked; "" for the default provider) of every provider call.
    calls: list[tuple[str, str]] = field(default_factory=list)

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == type_]

    def named(self, name: str) -> Registration:
        """The cloud or command resource of that name (components may share it with their main child)."""
        found = [r for r in self.registrations if r.name == name and not r.type.startswith(f"{PROJECT}:")]
        assert len(found) == 1, f"expected one resource named {name!r}, found {[r.type for r in found]}"
        return found[0]

    def commands(self) -> dict[str, dict[str, Any]]:
        """Every remote command's inputs by name: what the provider diffs to decide whether to run it."""
        return {r.name: r.inputs for r in self.of_type("command:remote:Command")}

    def changed_from(self, before: Program, type_prefix: str = "command:remote:Command") -> list[str]:
        """The resources (of types starting with type_prefix) whose inputs differ from `before`'s:
        what a `pulumi up` going from `before` to this program would update, replace or run again."""

        def inputs(program: Program) -> dict[str, Any]:
            return {r.name: _comparable(r.inputs) for r in program.registrations if r.type.startswith(type_prefix)}

        old, new = inputs(before), inputs(self)
        return sorted(name for name in old.keys() | new.keys() if old.get(name) != new.get(name))

    def component(self, name: str) -> Registration:
        return next(r for r in self.registrations if r.name == name and r.type.startswith(f"{PROJECT}:"))

    def by_urn(self, urn: str) -> Registration:
        return next(r for r in self.registrations if r.urn == urn)

    def resources_under(self, urn: str) -> list[Registration]:
        """The resource itself, or for a component every resource beneath it, as the engine expands
        a dependency on a component."""
        registration = next((r for r in self.registrations if r.urn == urn), None)
        if registration is None:
            return []
        if not registration.type.startswith(f"{PROJECT}:"):
            return [registration]
        children = [r for r in self.registrations if r.parent == urn]
        return [leaf for child in children for leaf in self.resources_under(child.urn)]

    def longest_chain(self, registration: Registration) -> list[Registration]:
        """The longest run of resources that must be created one after another, ending with this one
        (through the providers they wait for, which are no links of it)."""
        memo: dict[str, list[Registration]] = {}

        def chain(current: Registration) -> list[Registration]:
            if current.urn not in memo:
                dependencies = [*current.dependencies, *([current.provider] if current.provider else [])]
                waits_for = {leaf.urn: leaf for dep in dependencies for leaf in self.resources_under(dep)}
                longest_before = max((chain(dep) for dep in waits_for.values()), key=len, default=[])
                # A provider is waited for (it waits in turn for what it depends on) but makes nothing.
                is_link = not current.type.startswith("pulumi:providers:")
                memo[current.urn] = [*longest_before, *([current] if is_link else [])]
            return memo[current.urn]

        return chain(registration)


def _has_secret(value: Any) -> bool:
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return True
        return any(_has_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_secret(v) for v in value)
    return False


def _plain(value: Any) -> Any:
    """The value with the wire format's secret wrappers removed (secrecy is in secret_inputs)."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _plain(value["value"])
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _comparable(value: Any) -> Any:
    """Inputs as the engine compares them: an asset by its content, not by object identity."""
    if isinstance(value, pulumi.AssetArchive):
        return {name: _comparable(asset) for name, asset in value.assets.items()}
    if isinstance(value, pulumi.FileAsset):
        return hashlib.sha256(Path(value.path).read_bytes()).hexdigest()
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def _secret(value: Any) -> dict[str, Any]:
    return {rpc._special_sig_key: rpc._special_secret_sig, "value": value}


def _fake_outputs(type_: str, name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    """What the cloud would hand back in that region: ids and ARNs shaped like AWS's, from the name."""
    # Two stacks' resources of one name get different ids, as Pulumi's auto-names and AWS's ids differ.
    digest = hashlib.sha256(f"{pulumi.get_stack()}:{type_}:{name}".encode()).hexdigest()
    kind = type_.split(":")[-1]
    outputs: dict[str, Any] = {}
    if kind == "Bucket":
        bucket = inputs.get("bucket") or f"{name}-{digest[:7]}"
        outputs = {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}", "id": bucket}
    elif kind == "Role":
        role = inputs.get("name") or f"{name}-{digest[:7]}"
        outputs = {"name": role, "arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{role}"}
    elif kind == "Policy":
        managed = inputs.get("name") or f"{name}-{digest[:7]}"
        outputs = {"name": managed, "arn": f"arn:aws:iam::{ACCOUNT_ID}:policy/{managed}"}
    elif kind == "InstanceProfile":
        profile = inputs.get("name") or f"{name}-{digest[:7]}"
        outputs = {"name": profile, "arn": f"arn:aws:iam::{ACCOUNT_ID}:instance-profile/{profile}"}
    elif kind == "Function":
        function = inputs.get("name") or f"{name}-{digest[:7]}"
        outputs = {"name": function, "arn": f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function}"}
    elif kind == "LogGroup":
        group = inputs.get("name") or f"{name}-{digest[:7]}"
        outputs = {"name": group, "arn": f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{group}"}
    elif kind == "SecurityGroup":
        outputs = {"id": f"sg-{digest[:17]}"}
    elif kind == "User":
        user = inputs.get("name") or f"{name}-{digest[:7]}"
        outputs = {"name": user, "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/{user}"}
    elif kind == "AccessKey":
        outputs = {"id": f"AKIA{digest[:16].upper()}", "secret": SENTINEL_SECRET_KEY}
    elif kind in ("Component", "ImageRecipe", "InfrastructureConfiguration", "DistributionConfiguration"):
        resource = {"Component": "component", "ImageRecipe": "image-recipe"}.get(kind, kind.lower())
        outputs = {"arn": f"arn:aws:imagebuilder:{region}:{ACCOUNT_ID}:{resource}/{name}-{digest[:7]}/1.0.0"}
    elif kind == "Image" and type_.startswith("aws:imagebuilder/"):
        outputs = {
            "arn": f"arn:aws:imagebuilder:{region}:{ACCOUNT_ID}:image/{name}/1.0.0/1",
            "outputResources": [{"amis": [{"image": f"ami-{digest[:17]}", "region": region}], "containers": []}],
        }
    elif kind == "Stack":
        outputs = {"id": f"arn:aws:cloudformation:{region}:{ACCOUNT_ID}:stack/{inputs['name']}/{digest[:8]}"}
    elif kind == "Command":
        # A command's stdout is new whenever what it ran with is new, as on a real re-run.
        ran_with = json.dumps([inputs.get("create"), inputs.get("stdin")], sort_keys=True)
        outputs = {"stdout": f"ran {hashlib.sha256(ran_with.encode()).hexdigest()[:12]}", "stderr": ""}
        if "KEY_PAIR_FILE=" in str(inputs.get("create")):
            # A login banner from the user's shell startup files, then what ssh-keygen -y prints.
            key = base64.b64encode(f"ssh-rsa {name}".encode()).decode()
            outputs["stdout"] = f"Welcome to the lab machine\nssh-rsa {key}\n"
    return outputs


@dataclass
class RegionHolds:
    """What one region of the account holds before the up: fixed-name resources by name, with their
    tags, and whether it has a default VPC."""

    functions: dict[str, dict[str, str]] = field(default_factory=dict)
    log_groups: dict[str, dict[str, str]] = field(default_factory=dict)
    key_pairs: dict[str, dict[str, str]] = field(default_factory=dict)
    stacks: dict[str, dict[str, str]] = field(default_factory=dict)
    default_vpc: bool = True
    # The lease functions' role and the group the HTCondorAnnex-SecurityGroup stack names: a stack
    # joining this setup must leave both alone.
    lease_role: str = "first-lease-role-5e6f7a8"
    security_group_id: str = "sg-0f1e2d3c4b5a69788"
    # Data sources that fail here with an error other than "not found" (token -> the provider's message).
    errors: dict[str, str] = field(default_factory=dict)


@dataclass
class AccountIam:
    """The account's IAM roles before the up, and its role quota as Service Quotas gives it."""

    roles: int = 40
    roles_quota: int = 1_000


# A stack that joins the setup of the stack `first` of this project (`joinStack`).
JOIN = {f"{PROJECT}:joinStack": f"{PROJECT}/first"}
FIRST_STACK_TAGS = {"managed-by": "pulumi", "pulumi-project": PROJECT, "pulumi-stack": "first"}


def first_users_setup(tags: dict[str, str] = FIRST_STACK_TAGS, **more: Any) -> RegionHolds:
    """What the first user's `pulumi up` left in a region, every fixed name tagged with its stack."""
    functions = ["HTCondorAnnex-odiLease", "HTCondorAnnex-sfrLease", CONNECTIVITY_FUNCTION_NAME]
    return RegionHolds(
        functions={name: tags for name in functions},
        log_groups={f"/aws/lambda/{name}": tags for name in functions},
        key_pairs={KEY_PAIR_NAME: tags},
        stacks={name: tags for name in STACK_NAMES},
        **more,
    )


class Cloud(Protocol):
    """Where AWS resources are really made (tests/moto_cloud.py): outputs for each, or None."""

    def create(self, type_: str, name: str, inputs: dict[str, Any], region: str) -> dict[str, Any] | None: ...

    def call(self, token: str, args: dict[str, Any], region: str) -> dict[str, Any] | None: ...


class _Mocks(pulumi_mocks.Mocks):
    """Answers each resource and call in the region of the provider that makes it, as AWS would."""

    def __init__(
        self,
        default_region: str,
        account: dict[str, RegionHolds],
        cloud: Cloud | None = None,
        previous_outputs: dict[str, Any] | None = None,
        iam: AccountIam | None = None,
    ) -> None:
        self.default_region = default_region
        self.iam = iam or AccountIam()
        self.previous_outputs = previous_outputs or {}
        self.account = account
        self.cloud = cloud
        self.provider_regions: dict[str, str] = {}
        self.calls: list[tuple[str, str]] = []

    def region_of(self, provider_reference: str | None) -> str:
        """The region of an explicit provider ("<urn>::<id>"), or "" for the default provider."""
        if not provider_reference:
            return ""
        return self.provider_regions[provider_reference.split("::")[-2]]

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict]:
        if args.typ == "pulumi:providers:aws":
            self.provider_regions[args.name] = args.inputs["region"]
        region = self.region_of(args.provider) or self.default_region
        made = None
        if self.cloud is not None and args.typ.startswith("aws:"):
            made = self.cloud.create(args.typ, args.name, args.inputs, region)
        outputs = {
            **args.inputs,
            **(made if made is not None else _fake_outputs(args.typ, args.name, args.inputs, region)),
        }
        return outputs.pop("id", f"{args.name}-id"), outputs

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict, list | None]:
        region = self.region_of(args.provider)
        self.calls.append((args.token, region))
        if args.token == "pulumi:pulumi:readStackOutputs":
            return {"name": args.args["name"], "outputs": self.previous_outputs, "secretOutputNames": []}, []
        answered = self.cloud.call(args.token, args.args, region or self.default_region) if self.cloud else None
        if answered is not None:
            return answered, []
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/deployer", "userId": "AIDA"}, []
        holds = self.account.get(region or self.default_region, RegionHolds())
        if args.token == "aws:ec2/getVpcs:getVpcs":
            assert args.args["filters"] == [{"name": "is-default", "values": ["true"]}], args.args
            return {"ids": [default_vpc_id(region or self.default_region)] if holds.default_vpc else []}, []
        if args.token == "aws:lambda/getFunctions:getFunctions":
            return {"functionNames": sorted(holds.functions), "functionArns": []}, []
        if args.token == "aws:lambda/getFunction:getFunction":
            name = args.args["functionName"]
            role = holds.lease_role if "Lease" in name else "first-connectivity-role-1a2b3c4"
            return {
                "tags": holds.functions[name],
                "arn": f"arn:aws:lambda:{region or self.default_region}:{ACCOUNT_ID}:function:{name}",
                "role": f"arn:aws:iam::{ACCOUNT_ID}:role/{role}",
            }, []
        if args.token == "aws:cloudwatch/getLogGroups:getLogGroups":
            prefix = args.args["logGroupNamePrefix"]
            return {"logGroupNames": sorted(name for name in holds.log_groups if name.startswith(prefix))}, []
        if args.token == "aws:cloudwatch/getLogGroup:getLogGroup":
            return {"tags": holds.log_groups[args.args["name"]]}, []
        if args.token in holds.errors:
            return {}, [("name", holds.errors[args.token])]
        if args.token == "aws:iam/getRoles:getRoles":
            return {"names": [f"role-{number}" for number in range(self.iam.roles)], "arns": []}, []
        if args.token == "aws:servicequotas/getServiceQuota:getServiceQuota":
            asked = (args.args["serviceCode"], args.args["quotaCode"], args.args["region"])
            assert asked == ("iam", "L-FE177D64", "us-east-1"), args.args
            return {"value": float(self.iam.roles_quota), "quotaName": "Roles per account"}, []
        # The single-resource data sources fail when the resource is missing, with the messages
        # terraform-provider-aws gives (tfresource.NotFound; SingularDataSourceFindError).
        for token, kind, key, missing in (
            ("aws:ec2/getKeyPair:getKeyPair", holds.key_pairs, "keyName", "no matching EC2 Key Pair found"),
            ("aws:cloudformation/getStack:getStack", holds.stacks, "name", "couldn't find resource"),
        ):
            if args.token == token:
                name = args.args[key]
                if name not in kind:
                    return {}, [(key, missing)]
                if kind is holds.stacks:
                    stack_id = f"arn:aws:cloudformation:{region or self.default_region}:{ACCOUNT_ID}:stack/{name}/1"
                    outputs = {"SecurityGroupID": holds.security_group_id} if name == SECURITY_GROUP_STACK else {}
                    return {"tags": kind[name], "id": stack_id, "outputs": outputs}, []
                return {"tags": kind[name]}, []
        raise AssertionError(f"the program called {args.token}, which the mocks do not know")


class _Monitor(pulumi_mocks.MockMonitor):
    def __init__(
        self,
        program: Program,
        region: str,
        resolve_aliases: bool,
        account: dict[str, RegionHolds],
        cloud: Cloud | None = None,
        previous_outputs: dict[str, Any] | None = None,
        iam: AccountIam | None = None,
    ) -> None:
        super().__init__(_Mocks(region, account, cloud, previous_outputs, iam))
        self.program = program
        self.resolve_aliases = resolve_aliases

    def GetDeploymentInfo(self, request: Any) -> Any:  # noqa: N802 - the monitor protocol's name
        """Without alias specs the SDK itself turns every alias, inherited ones too, into URNs."""
        info = super().GetDeploymentInfo(request)
        if self.resolve_aliases:
            info.supportedFeatures.remove(resource_pb2.RESOURCE_MONITOR_FEATURE_ALIAS_SPECS)
        return info

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the monitor protocol's name
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)
        raw_inputs = json_format.MessageToDict(request.object)
        response = super().RegisterResource(request)
        urn = response.urn
        # The engine refuses a second resource with the same URN (same type chain and name).
        assert all(r.urn != urn for r in self.program.registrations), f"duplicate resource URN {urn}"
        _id, state = self.resources[urn].id, dict(self.resources[urn].state)
        declared = PROVIDER_SECRET_OUTPUTS.get(request.type, set()) | set(request.additionalSecretOutputs)
        marked = {k: (_secret(v) if k in declared else v) for k, v in state.items()}
        obj = _sync_await(rpc.serialize_properties(marked, {}))
        self.program.registrations.append(
            Registration(
                type=request.type,
                name=request.name,
                inputs=_plain(rpc.deserialize_properties(request.object, keep_internal=False)),
                outputs=state,
                secret_inputs={k for k, v in raw_inputs.items() if _has_secret(v)},
                parent=request.parent,
                dependencies=list(request.dependencies),
                delete_before_replace=request.deleteBeforeReplace,
                retain_on_delete=request.retainOnDelete,
                protect=request.protect,
                additional_secret_outputs=list(request.additionalSecretOutputs),
                urn=urn,
                region=self.mocks.region_of(request.provider) if request.type.startswith("aws:") else "",
                aliases=list(request.aliasURNs),
                provider=request.provider.rsplit("::", 1)[0] if request.provider else "",
                property_dependencies={
                    name: list(dependencies.urns) for name, dependencies in request.propertyDependencies.items()
                },
                replace_on_changes=list(request.replaceOnChanges),
                replacement_trigger=json_format.MessageToDict(request.replacement_trigger)
                if request.HasField("replacement_trigger")
                else None,
            )
        )
        return type(response)(urn=urn, id=response.id, object=obj)


class _LogCapture:
    def __init__(self, program: Program) -> None:
        self.program = program

    def __getattr__(self, level: str) -> Any:
        # The SDK's own debug chatter names resources, not values; what a user sees is info and up.
        if level == "debug":
            return lambda *args, **kwargs: None
        return lambda message, *args, **kwargs: self.program.logs.append(f"{level}: {message}")


def run_program(
    config: dict[str, str] | None = None,
    preview: bool = False,
    base: bool = True,
    into: Program | None = None,
    source: Path = PROGRAM,
    secret_keys: list[str] = SECRET_KEYS,
    resolve_aliases: bool = False,
    account: dict[str, RegionHolds] | None = None,
    offered_host_key: HostKey | None = None,
    stack: str = "test",
    cloud: Cloud | None = None,
    previous_outputs: dict[str, Any] | None = None,
    iam: AccountIam | None = None,
) -> Program:
    """Evaluate __main__.py with BASE_CONFIG overlaid by `config` (a value of None removes a key).

    Registrations are recorded in `into` when given, so a caller sees them even if the program raises.
    `account` is what each region holds before the up (by default nothing, and a default VPC).
    No machine answers under mocks: an up's ssh-keyscan gets `offered_host_key` (None: no answer).
    With a `cloud`, the AWS resources are made there and its answers are the program's outputs.
    `previous_outputs` are what the stack's last up exported (none: a new stack).
    `iam` is the account's IAM roles and role quota (by default, room for any stack).
    """
    program = into if into is not None else Program()
    merged = {**(BASE_CONFIG if base else {}), **(config or {})}
    merged = {k: v for k, v in merged.items() if v is not None}
    monitor = _Monitor(
        program, merged.get("aws:region", "us-east-1"), resolve_aliases, account or {}, cloud, previous_outputs, iam
    )
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(monitor.mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor)
    runtime_settings.SETTINGS.engine.logger = _LogCapture(program)  # type: ignore[assignment]
    pulumi.runtime.set_all_config(merged, secret_keys=[k for k in secret_keys if k in merged])
    exported: dict[str, pulumi.Output[Any]] = {}

    def body() -> pulumi.Output[Any]:
        runpy.run_path(str(source), run_name="__main__")
        stack = runtime_settings.get_root_resource()
        for name, value in getattr(stack, "outputs", {}).items():
            exported[name] = pulumi.Output.from_input(value)
        return pulumi.Output.all(*exported.values())

    with mock.patch.object(host_key, "offered_host_key", lambda *_: offered_host_key):
        pulumi.runtime.test(body)()
    resolved = {
        name: StackOutput(_sync_await(output.future()), _sync_await(output.is_secret()))
        for name, output in exported.items()
    }
    program.outputs = resolved
    program.calls = monitor.mocks.calls
    return program


def ssh_private_key_pem() -> str:
    return "-----BEGIN OPENSSH PRIVATE KEY-----\nSENTINEL-ssh-private-key-c4b0\n-----END OPENSSH PRIVATE KEY-----\n"


def secret_config() -> dict[str, str]:
    """Config with a sentinel in every secret the user supplies."""
    return {f"{PROJECT}:sshPrivateKey": ssh_private_key_pem()}


def sentinels() -> list[str]:
    return [
        BASE_CONFIG[f"{PROJECT}:poolPassword"],
        "SENTINEL-ssh-private-key-c4b0",
        SENTINEL_SECRET_KEY,
    ]


def policy(registration: Registration, key: str = "policy") -> dict[str, Any]:
    return json.loads(registration.inputs[key])


def statements_by_sid(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {statement["Sid"]: statement for statement in document["Statement"] if "Sid" in statement}


COMMAND_TYPES = ("command:remote:Command", "command:local:Command")


def command_graph(program: Program) -> dict[str, dict[str, Any]]:
    """Each command: its type, inputs, secret inputs, options, and every command it comes after
    (through any resource between them, such as the key pair EC2 imports)."""
    by_urn = {r.urn: r for r in program.registrations}

    def before(urn: str, seen: set[str]) -> set[str]:
        found = set()
        registration = by_urn[urn]
        for dependency in [*registration.dependencies, *([registration.provider] if registration.provider else [])]:
            if dependency in seen or dependency not in by_urn:
                continue
            seen.add(dependency)
            if by_urn[dependency].type in COMMAND_TYPES:
                found.add(by_urn[dependency].name)
            found |= before(dependency, seen)
        return found

    return {
        r.name: {
            "type": r.type,
            "inputs": _comparable(r.inputs),
            "secret_inputs": sorted(r.secret_inputs),
            "delete_before_replace": r.delete_before_replace,
            "additional_secret_outputs": sorted(r.additional_secret_outputs),
            "after": sorted(before(r.urn, set())),
        }
        for r in program.registrations
        if r.type in COMMAND_TYPES
    }
