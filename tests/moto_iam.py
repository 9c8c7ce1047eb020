"""moto's IAM enforcement, made to decide on each call's real resources.

What moto does not do, and what this module does about it (moto 5.2, pinned below 6):

- For services other than S3, moto authorizes every call against the resource `*`, so a resource-
  scoped Allow would never match. `enforce_per_resource` supplies, through moto's own hook, the
  resource ARNs that AWS's Service Authorization Reference lists for each call; moto's evaluator
  still makes every decision.
- moto authorizes Lambda's Invoke as `lambda:Invoke`; IAM calls it `lambda:InvokeFunction`, and so
  does the policy, so the IAM name is what moto is asked about.
- moto signs a bodiless request (Lambda GetFunction) over its parsed headers, not the empty body, so
  it rejects a correct signature; `signed_payload` makes it sign what the client signed.
- moto passes no request context to identity policies, so it cannot evaluate a Condition: it treats
  the statement's conditions as met (policy_conditions.py: no actual values, no failed check).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import pytest
from moto.cloudformation import cloudformation_backends
from moto.core.responses import BaseResponse
from moto.iam.access_control import IAMRequestBase

from tests.harness import ACCOUNT_ID


def _arn(service: str, region: str, resource: str) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{resource}"


def _function_arn(response: BaseResponse) -> list[str]:
    name = unquote(response.path.split("/functions/")[1].split("/")[0])
    return [name if name.startswith("arn:") else _arn("lambda", response.region, f"function:{name}")]


def _rule_arn(parameter: str) -> Callable[[BaseResponse], list[str]]:
    return lambda response: [_arn("events", response.region, f"rule/{response._get_param(parameter)}")]


def _launch_resources(response: BaseResponse) -> list[str]:
    region = response.region
    resources = [
        f"arn:aws:ec2:{region}::image/{response._get_param('ImageId')}",
        *(_arn("ec2", region, kind) for kind in ("instance/*", "volume/*", "network-interface/*", "subnet/*")),
        *(_arn("ec2", region, f"security-group/{group}") for group in response._get_param("SecurityGroupIds", [])),
    ]
    if response._get_param("KeyName"):
        resources.append(_arn("ec2", region, f"key-pair/{response._get_param('KeyName')}"))
    return resources


def _iam_arn(resource: str) -> str:
    return f"arn:aws:iam::{ACCOUNT_ID}:{resource}"


def _role_arn(response: BaseResponse) -> list[str]:
    return [_iam_arn(f"role/{response._get_param('RoleName')}")]


def _stack_arns(response: BaseResponse) -> list[str]:
    name = response._get_param("StackName")
    stacks = cloudformation_backends[ACCOUNT_ID][response.region].stacks.values()
    return [stack.stack_id for stack in stacks if name in (stack.name, stack.stack_id)] or ["*"]


# Resource types per API operation, from AWS's Service Authorization Reference.
_RESOURCES: dict[str, Callable[[BaseResponse], list[str]]] = {
    "Invoke": _function_arn,
    "GetFunction": _function_arn,
    "UpdateFunctionCode": _function_arn,
    "DeleteFunction": _function_arn,
    "PutRule": _rule_arn("Name"),
    "DeleteRule": _rule_arn("Name"),
    "PutTargets": _rule_arn("Rule"),
    "RemoveTargets": _rule_arn("Rule"),
    "RunInstances": _launch_resources,
    "CreateTags": lambda r: [_arn("ec2", r.region, f"instance/{i}") for i in r._get_param("Resources")],
    "TerminateInstances": lambda r: [_arn("ec2", r.region, f"instance/{i}") for i in r._get_param("InstanceIds")],
    "RequestSpotFleet": lambda r: [_arn("ec2", r.region, "spot-fleet-request/*")],
    "DescribeStacks": _stack_arns,
    "DeleteStack": _stack_arns,
    "GetInstanceProfile": lambda r: [_iam_arn(f"instance-profile/{r._get_param('InstanceProfileName')}")],
    "GetRolePolicy": _role_arn,
    "ListRolePolicies": _role_arn,
    "ListAttachedRolePolicies": _role_arn,
    "GetPolicy": lambda r: [r._get_param("PolicyArn")],
    "GetPolicyVersion": lambda r: [r._get_param("PolicyArn")],
    "DeregisterImage": lambda r: [f"arn:aws:ec2:{r.region}::image/{r._get_param('ImageId')}"],
    "DeleteSnapshot": lambda r: [f"arn:aws:ec2:{r.region}::snapshot/{r._get_param('SnapshotId')}"],
}


# moto names the action after the API operation; IAM's name differs for these.
_IAM_ACTION_OF_OPERATION = {"lambda:Invoke": "lambda:InvokeFunction"}


def _resources_of(response: BaseResponse) -> list[str]:
    resources = _RESOURCES.get(response._get_action())
    return resources(response) if resources else ["*"]


def enforce_per_resource(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's enforcement, each call decided on its resources (for as long as the patch lasts)."""
    authorize = BaseResponse._authenticate_and_authorize_normal_action

    def authorize_each_resource(self: BaseResponse, resource: str = "*") -> None:
        for each in _resources_of(self) if resource == "*" else [resource]:
            authorize(self, each)

    def signed_payload(self: IAMRequestBase) -> Any:
        request = create_request(self)
        if self._method in ("GET", "DELETE") and not self._body:
            request.data = b""
        return request

    def with_iam_action_name(self: IAMRequestBase, *args: Any, **kwargs: Any) -> None:
        create_iam_request(self, *args, **kwargs)
        self._action = _IAM_ACTION_OF_OPERATION.get(self._action, self._action)

    create_request = IAMRequestBase._create_aws_request
    create_iam_request = IAMRequestBase.__init__
    monkeypatch.setattr(IAMRequestBase, "__init__", with_iam_action_name)
    monkeypatch.setattr(BaseResponse, "_authenticate_and_authorize_normal_action", authorize_each_resource)
    monkeypatch.setattr(IAMRequestBase, "_create_aws_request", signed_payload)
