import json

import pytest

from tests.harness import Program, run_program

EXPECTED_OUTPUTS = {
    "HTCondorAnnex-ConfigurationBucket": {"S3BucketName"},
    "HTCondorAnnex-LambdaFunctions": {"odiLeaseFunctionARN", "sfrLeaseFunctionARN", "ccFunctionARN"},
    "HTCondorAnnex-InstanceProfile": {"InstanceProfileARN"},
    "HTCondorAnnex-SecurityGroup": {"SecurityGroupID"},
}


@pytest.fixture(scope="module")
def program() -> Program:
    return run_program()


@pytest.mark.parametrize("stack_name", sorted(EXPECTED_OUTPUTS))
def test_marker_stack_named_and_outputs_under_original_names(program: Program, stack_name: str):
    stack = program.named(f"annex-us-east-1-check-setup-{stack_name}")
    assert stack.inputs["name"] == stack_name
    template = json.loads(stack.inputs["templateBody"])
    assert set(template["Outputs"]) == EXPECTED_OUTPUTS[stack_name], stack_name
    # Free and cleanly deletable: nothing but a wait-condition handle.
    assert [r["Type"] for r in template["Resources"].values()] == ["AWS::CloudFormation::WaitConditionHandle"]
    assert set(stack.inputs["parameters"]) == EXPECTED_OUTPUTS[stack_name]


def test_outputs_carry_the_real_ids(program: Program):
    lambdas = program.named("annex-us-east-1-check-setup-HTCondorAnnex-LambdaFunctions").inputs["parameters"]
    assert lambdas["ccFunctionARN"] == program.outputs["connectivityFunctionArn"].value
    assert lambdas["odiLeaseFunctionARN"] == program.outputs["odiLeaseFunctionArn"].value
    bucket = program.named("annex-us-east-1-check-setup-HTCondorAnnex-ConfigurationBucket").inputs["parameters"]
    assert bucket["S3BucketName"] == program.outputs["bucketName"].value
    group = program.named("annex-us-east-1-check-setup-HTCondorAnnex-SecurityGroup").inputs["parameters"]
    assert group["SecurityGroupID"] == program.outputs["securityGroupId"].value
    profile = program.named("annex-us-east-1-check-setup-HTCondorAnnex-InstanceProfile").inputs["parameters"]
    assert profile["InstanceProfileARN"] == program.outputs["instanceProfileArn"].value


def test_markers_wait_for_what_they_vouch_for(program: Program):
    """-check-setup passing must mean the resources exist, not merely that their ARNs are known."""
    vouched = {"annex-us-east-1-config", "annex-us-east-1-functions", "annex-us-east-1-instance", "annex-us-east-1-sg"}
    for stack in program.of_type("aws:cloudformation/stack:Stack"):
        waited = {leaf.urn for dep in stack.dependencies for leaf in program.resources_under(dep)}
        for component in vouched:
            for resource in program.resources_under(program.component(component).urn):
                assert resource.urn in waited, f"{stack.name} does not wait for {resource.name}"
