"""CheckSetupStacks: what the user's own `condor_annex -check-setup` looks for."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.contract import BUCKET_STACK, INSTANCE_PROFILE_STACK, LAMBDA_STACK, SECURITY_GROUP_STACK


def marker_template(output_names: list[str]) -> str:
    """A stack that holds nothing billable: one WaitConditionHandle, and the ids as outputs.

    -check-setup only asks DescribeStacks whether a stack of each name is complete; the real
    resources stay native Pulumi resources, and these stacks just point at them.
    """
    return json.dumps(
        {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Description": "condor_annex -check-setup marker, managed by the condor-annex Pulumi program",
            "Parameters": {output: {"Type": "String"} for output in output_names},
            "Resources": {"Marker": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
            "Outputs": {output: {"Value": {"Ref": output}} for output in output_names},
        },
        sort_keys=True,
    )


@dataclass
class CheckSetupStacksArgs:
    bucket_name: pulumi.Input[str]
    odi_lease_arn: pulumi.Input[str]
    sfr_lease_arn: pulumi.Input[str]
    connectivity_arn: pulumi.Input[str]
    instance_profile_arn: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    # What the markers vouch for: -check-setup passing must mean these exist, not that they are named.
    marks: list[pulumi.Resource] = field(default_factory=list)
    # The component's name in a stack made before `regions` existed, where each stack resource was
    # named by its stack name alone.
    name_before_regions: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


class CheckSetupStacks(pulumi.ComponentResource):
    """The four HTCondorAnnex-* CloudFormation stacks, their outputs under the original names."""

    stack_ids: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: CheckSetupStacksArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("condor-annex:aws:CheckSetupStacks", name, None, opts)

        outputs_by_stack: dict[str, dict[str, pulumi.Input[str]]] = {
            BUCKET_STACK: {"S3BucketName": args.bucket_name},
            LAMBDA_STACK: {
                "odiLeaseFunctionARN": args.odi_lease_arn,
                "sfrLeaseFunctionARN": args.sfr_lease_arn,
                "ccFunctionARN": args.connectivity_arn,
            },
            INSTANCE_PROFILE_STACK: {"InstanceProfileARN": args.instance_profile_arn},
            SECURITY_GROUP_STACK: {"SecurityGroupID": args.security_group_id},
        }
        parent_before = (
            pulumi.resource.create_urn(args.name_before_regions, "condor-annex:aws:CheckSetupStacks")
            if args.name_before_regions
            else None
        )
        self.stack_ids = {}
        for stack_name, outputs in outputs_by_stack.items():
            stack = aws.cloudformation.Stack(
                f"{name}-{stack_name}",
                name=stack_name,
                template_body=marker_template(sorted(outputs)),
                parameters=outputs,
                tags=args.tags,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=args.marks,
                    aliases=[pulumi.Alias(name=stack_name, parent=parent_before)] if parent_before else None,
                ),
            )
            self.stack_ids[stack_name] = stack.id
        self.register_outputs({"stack_ids": self.stack_ids})
