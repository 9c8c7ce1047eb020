"""The program's AWS resources made in moto, as the AWS provider would make them, for tests that need
the account a `pulumi up` leaves (the annex end to end: tests/e2e/test_annex.py).

Run the program with `run_program(cloud=MotoCloud(...))`: each AWS resource it registers is created
in moto with the inputs it registered (Pulumi's auto-names: the resource name and a random suffix),
and the outputs the program reads next are moto's own ids, so policies, knobs and key files name
what moto holds. `destroy` deletes them again, newest first, as `pulumi destroy` does.

What moto cannot hold, and what stands in for it:
- Image Builder (no moto service): the component, recipe and configurations are only recorded; the
  image is an AMI registered in moto, with a root snapshot, tagged with the distribution's AMI tags, as
  Image Builder's build leaves one.
- Lambda invocations (lifecycle scope CRUD: the image's cleanup, the lease functions' teardown):
  the project's handler is called as the provider would invoke the function, on create and, on
  destroy, with `tf.action = delete`, under the function's role's credentials and environment.
- The AWS managed policies Image Builder's build role attaches (moto loads none): recorded only.
- The key pair: imported with a key made here; under mocks the machine's step printed no real key.
- The bucket's TLS-only policy: recorded only. moto cannot evaluate its `aws:SecureTransport`
  condition and takes it as met, denying every call (tried: a PutObject the user's policy allows
  was refused once the policy was on); every call here is over TLS, which AWS would allow.
"""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import boto3
import image_cleanup
import lease
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from components.lambdas import LAMBDA_SOURCE
from tests.e2e.aws_world import as_lambda, role_credentials

ADMIN_USER = "moto-admin"
ENCRYPTION = "BucketServerSideEncryptionConfiguration"
ALLOW_EVERYTHING = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)


def admin_session() -> boto3.Session:
    """An administrator of the account, with a key moto knows (its IAM enforcement refuses others)."""
    iam = boto3.client("iam", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    iam.create_user(UserName=ADMIN_USER)
    iam.put_user_policy(UserName=ADMIN_USER, PolicyName="administrator", PolicyDocument=ALLOW_EVERYTHING)
    key = iam.create_access_key(UserName=ADMIN_USER)["AccessKey"]
    return boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])


def function_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(LAMBDA_SOURCE.glob("*.py")):
            archive.writestr(path.name, path.read_text())
    return buffer.getvalue()


def tag_list(tags: dict[str, str] | None) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in (tags or {}).items()]


def auto_name(name: str, limit: int = 64) -> str:
    """Pulumi's auto-name: the resource's name and seven random hex digits."""
    return f"{name[: limit - 8]}-{secrets.token_hex(4)[:7]}"


@dataclass
class Made:
    type: str
    region: str
    outputs: dict[str, Any]
    delete: Callable[[], None]


@dataclass
class MotoCloud:
    """Creates in moto what the program registers, and deletes it again."""

    admin: boto3.Session
    made: list[Made] = field(default_factory=list)

    def client(self, service: str, region: str) -> Any:
        return self.admin.client(service, region_name=region)

    # --- the provider's data sources -----------------------------------------------------

    def call(self, token: str, args: dict[str, Any], region: str) -> dict[str, Any] | None:
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            identity = self.client("sts", region).get_caller_identity()
            return {"accountId": identity["Account"], "arn": identity["Arn"], "userId": identity["UserId"]}
        if token == "aws:ec2/getVpcs:getVpcs":
            vpcs = self.client("ec2", region).describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])
            return {"ids": [vpc["VpcId"] for vpc in vpcs["Vpcs"]]}
        if token == "aws:lambda/getFunctions:getFunctions":
            listed = self.client("lambda", region).list_functions()["Functions"]
            return {
                "functionNames": [f["FunctionName"] for f in listed],
                "functionArns": [f["FunctionArn"] for f in listed],
            }
        if token == "aws:cloudwatch/getLogGroups:getLogGroups":
            groups = self.client("logs", region).describe_log_groups(logGroupNamePrefix=args["logGroupNamePrefix"])
            return {"logGroupNames": [group["logGroupName"] for group in groups["logGroups"]]}
        return None

    # --- the provider's resources --------------------------------------------------------

    def create(self, type_: str, name: str, inputs: dict[str, Any], region: str) -> dict[str, Any] | None:
        maker = self.makers().get(type_)
        if maker is None:
            raise AssertionError(f"tests/moto_cloud.py does not make a {type_} ({name})")
        outputs, delete = maker(name, inputs, region)
        self.made.append(Made(type_, region, outputs, delete))
        return outputs

    def makers(self) -> dict[str, Callable[[str, dict[str, Any], str], tuple[dict[str, Any], Callable[[], None]]]]:
        return {
            "aws:s3/bucket:Bucket": self._s3_bucket,
            "aws:s3/bucketOwnershipControls:BucketOwnershipControls": self._s3_bucket_ownership_controls,
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": self._s3_bucket_public_access_block,
            f"aws:s3/bucketServerSideEncryptionConfiguration:{ENCRYPTION}": self._s3_bucket_encryption,
            "aws:s3/bucketPolicy:BucketPolicy": self._s3_bucket_policy,
            "aws:iam/role:Role": self._iam_role,
            "aws:iam/rolePolicy:RolePolicy": self._iam_role_policy,
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment": self._iam_role_policy_attachment,
            "aws:iam/instanceProfile:InstanceProfile": self._iam_instance_profile,
            "aws:iam/policy:Policy": self._iam_policy,
            "aws:iam/user:User": self._iam_user,
            "aws:iam/userPolicy:UserPolicy": self._iam_user_policy,
            "aws:iam/userPolicyAttachment:UserPolicyAttachment": self._iam_user_policy_attachment,
            "aws:iam/accessKey:AccessKey": self._iam_access_key,
            "aws:cloudwatch/logGroup:LogGroup": self._cloudwatch_log_group,
            "aws:lambda/function:Function": self._lambda_function,
            "aws:lambda/permission:Permission": self._lambda_permission,
            "aws:lambda/invocation:Invocation": self._lambda_invocation,
            "aws:ec2/securityGroup:SecurityGroup": self._ec2_security_group,
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": self._security_group_ingress_rule,
            "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": self._security_group_egress_rule,
            "aws:ec2/keyPair:KeyPair": self._ec2_key_pair,
            "aws:cloudformation/stack:Stack": self._cloudformation_stack,
            "aws:imagebuilder/component:Component": self._imagebuilder_component,
            "aws:imagebuilder/imageRecipe:ImageRecipe": self._imagebuilder_image_recipe,
            "aws:imagebuilder/infrastructureConfiguration:InfrastructureConfiguration": self._image_infrastructure,
            "aws:imagebuilder/distributionConfiguration:DistributionConfiguration": self._image_distribution,
            "aws:imagebuilder/image:Image": self._imagebuilder_image,
        }

    def destroy(self) -> None:
        while self.made:
            self.made.pop().delete()

    def _s3_bucket(self, name: str, inputs: dict[str, Any], region: str) -> tuple[dict, Callable]:
        s3 = self.client("s3", region)
        bucket = auto_name(name, 63).lower()
        location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **location)
        if inputs.get("tags"):
            s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_list(inputs["tags"])})

        def delete() -> None:
            for listed in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=listed["Key"])
            s3.delete_bucket(Bucket=bucket)

        return {"bucket": bucket, "id": bucket, "arn": f"arn:aws:s3:::{bucket}", "region": region}, delete

    def _s3_bucket_ownership_controls(self, name: str, inputs: dict, region: str) -> tuple:
        s3 = self.client("s3", region)
        rule = {"ObjectOwnership": inputs["rule"]["objectOwnership"]}
        s3.put_bucket_ownership_controls(Bucket=inputs["bucket"], OwnershipControls={"Rules": [rule]})
        return {"id": inputs["bucket"]}, lambda: s3.delete_bucket_ownership_controls(Bucket=inputs["bucket"])

    def _s3_bucket_public_access_block(self, name: str, inputs: dict, region: str) -> tuple:
        s3 = self.client("s3", region)
        keys = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        s3.put_public_access_block(
            Bucket=inputs["bucket"],
            PublicAccessBlockConfiguration={key[0].upper() + key[1:]: bool(inputs.get(key)) for key in keys},
        )
        return {"id": inputs["bucket"]}, lambda: s3.delete_public_access_block(Bucket=inputs["bucket"])

    def _s3_bucket_encryption(self, name: str, inputs: dict, region: str) -> tuple:
        s3 = self.client("s3", region)
        algorithm = inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"]
        s3.put_bucket_encryption(
            Bucket=inputs["bucket"],
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": algorithm}, "BucketKeyEnabled": True}]
            },
        )
        return {"id": inputs["bucket"]}, lambda: s3.delete_bucket_encryption(Bucket=inputs["bucket"])

    def _s3_bucket_policy(self, name: str, inputs: dict, region: str) -> tuple:
        return {"id": inputs["bucket"]}, lambda: None

    def _iam_role(self, name: str, inputs: dict, region: str) -> tuple:
        iam = self.client("iam", region)
        role = iam.create_role(
            RoleName=auto_name(name),
            AssumeRolePolicyDocument=inputs["assumeRolePolicy"],
            Tags=tag_list(inputs.get("tags")),
        )["Role"]

        def delete() -> None:
            # force_detach_policies: what others attached goes with it.
            for policy in iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]:
                iam.delete_role_policy(RoleName=role["RoleName"], PolicyName=policy)
            for attached in iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]:
                iam.detach_role_policy(RoleName=role["RoleName"], PolicyArn=attached["PolicyArn"])
            iam.delete_role(RoleName=role["RoleName"])

        return {
            "name": role["RoleName"],
            "id": role["RoleName"],
            "arn": role["Arn"],
            "uniqueId": role["RoleId"],
        }, delete

    def _iam_role_policy(self, name: str, inputs: dict, region: str) -> tuple:
        iam = self.client("iam", region)
        policy_name = auto_name(name, 128)
        iam.put_role_policy(RoleName=inputs["role"], PolicyName=policy_name, PolicyDocument=inputs["policy"])

        def delete() -> None:
            try:
                iam.delete_role_policy(RoleName=inputs["role"], PolicyName=policy_name)
            except ClientError as error:
                # The provider takes a policy already gone (its role deleted) as deleted.
                if error.response["Error"]["Code"] != "NoSuchEntity":
                    raise

        return {"id": f"{inputs['role']}:{policy_name}", "name": policy_name}, delete

    def _iam_role_policy_attachment(self, name: str, inputs: dict, region: str) -> tuple:
        return {"id": f"{inputs['role']}-{name}"}, lambda: None

    def _iam_instance_profile(self, name: str, inputs: dict, region: str) -> tuple:
        iam = self.client("iam", region)
        profile_name = auto_name(name, 128)
        profile = iam.create_instance_profile(InstanceProfileName=profile_name, Path="/")["InstanceProfile"]
        iam.add_role_to_instance_profile(InstanceProfileName=profile_name, RoleName=inputs["role"])

        def delete() -> None:
            iam.remove_role_from_instance_profile(InstanceProfileName=profile_name, RoleName=inputs["role"])
            iam.delete_instance_profile(InstanceProfileName=profile_name)

        return {"name": profile_name, "id": profile_name, "arn": profile["Arn"]}, delete

    def _iam_policy(self, name: str, inputs: dict, region: str) -> tuple:
        iam = self.client("iam", region)
        arn = iam.create_policy(PolicyName=auto_name(name, 128), PolicyDocument=inputs["policy"])["Policy"]["Arn"]
        return {"arn": arn, "id": arn}, lambda: iam.delete_policy(PolicyArn=arn)

    def _iam_user(self, name: str, inputs: dict, region: str) -> tuple:
        iam = self.client("iam", region)
        user = iam.create_user(UserName=auto_name(name), Tags=tag_list(inputs.get("tags")))["User"]
        return {"name": user["UserName"], "id": user["UserName"], "arn": user["Arn"]}, lambda: iam.delete_user(
            UserName=user["UserName"]
        )

    def _iam_user_policy(self, name: str, inputs: dict, region: str) -> tuple:
        iam = self.client("iam", region)
        policy_name = auto_name(name, 128)
        iam.put_user_policy(UserName=inputs["user"], PolicyName=policy_name, PolicyDocument=inputs["policy"])
        return {"id": policy_name}, lambda: iam.delete_user_policy(UserName=inputs["user"], PolicyName=policy_name)

    def _iam_user_policy_attachment(self, name: str, inputs: dict, region: str) -> tuple:
        iam = self.client("iam", region)
        iam.attach_user_policy(UserName=inputs["user"], PolicyArn=inputs["policyArn"])
        return {"id": name}, lambda: iam.detach_user_policy(UserName=inputs["user"], PolicyArn=inputs["policyArn"])

    def _iam_access_key(self, name: str, inputs: dict, region: str) -> tuple:
        iam = self.client("iam", region)
        key = iam.create_access_key(UserName=inputs["user"])["AccessKey"]
        return {"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}, lambda: iam.delete_access_key(
            UserName=inputs["user"], AccessKeyId=key["AccessKeyId"]
        )

    def _cloudwatch_log_group(self, name: str, inputs: dict, region: str) -> tuple:
        logs = self.client("logs", region)
        group = inputs.get("name") or auto_name(name, 512)
        logs.create_log_group(logGroupName=group, tags=inputs.get("tags") or {})
        arn = f"arn:aws:logs:{region}:{self._account()}:log-group:{group}"
        return {"name": group, "id": group, "arn": arn}, lambda: logs.delete_log_group(logGroupName=group)

    def _lambda_function(self, name: str, inputs: dict, region: str) -> tuple:
        functions = self.client("lambda", region)
        function_name = inputs.get("name") or auto_name(name)
        created = functions.create_function(
            FunctionName=function_name,
            Runtime=inputs["runtime"],
            Role=inputs["role"],
            Handler=inputs["handler"],
            Code={"ZipFile": function_zip()},
            Timeout=int(inputs.get("timeout", 3)),
            Environment={"Variables": (inputs.get("environment") or {}).get("variables", {})},
            Tags=inputs.get("tags") or {},
        )
        return {
            "name": function_name,
            "id": function_name,
            "arn": created["FunctionArn"],
        }, lambda: functions.delete_function(FunctionName=function_name)

    def _lambda_permission(self, name: str, inputs: dict, region: str) -> tuple:
        functions = self.client("lambda", region)
        statement = auto_name(name)
        functions.add_permission(
            FunctionName=inputs["function"],
            StatementId=statement,
            Action=inputs["action"],
            Principal=inputs["principal"],
            SourceArn=inputs["sourceArn"],
            SourceAccount=inputs["sourceAccount"],
        )
        return {"id": statement}, lambda: functions.remove_permission(
            FunctionName=inputs["function"], StatementId=statement
        )

    def _lambda_invocation(self, name: str, inputs: dict, region: str) -> tuple:
        functions = self.client("lambda", region)
        configuration = functions.get_function(FunctionName=inputs["functionName"])["Configuration"]
        payload = json.loads(inputs["input"])
        handler = {
            "image_cleanup.handler": image_cleanup.handler,
            "lease.odi_handler": lease.odi_handler,
            "lease.sfr_handler": lease.sfr_handler,
        }[configuration["Handler"]]
        context = SimpleNamespace(invoked_function_arn=configuration["FunctionArn"])

        def invoke(action: str) -> Any:
            credentials = role_credentials(configuration["Role"], inputs["functionName"], region)
            environment = configuration.get("Environment", {}).get("Variables", {})
            with as_lambda(credentials, region, environment):
                return handler({**payload, "tf": {"action": action, "prev_input": payload}}, context)

        invoke("create")
        return {"id": name, "result": "{}"}, lambda: invoke("delete")

    def _ec2_security_group(self, name: str, inputs: dict, region: str) -> tuple:
        ec2 = self.client("ec2", region)
        group = ec2.create_security_group(
            GroupName=auto_name(name, 255),
            Description=inputs["description"],
            VpcId=inputs["vpcId"],
            TagSpecifications=[{"ResourceType": "security-group", "Tags": tag_list(inputs.get("tags"))}],
        )["GroupId"]
        # The provider removes the allow-all egress rule EC2 adds to a new group (terraform-provider-
        # aws's aws_security_group does), so that only the program's own rules are there.
        rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])
        ec2.revoke_security_group_egress(
            GroupId=group,
            SecurityGroupRuleIds=[
                rule["SecurityGroupRuleId"] for rule in rules["SecurityGroupRules"] if rule["IsEgress"]
            ],
        )
        return {
            "id": group,
            "arn": f"arn:aws:ec2:{region}:{self._account()}:security-group/{group}",
        }, lambda: ec2.delete_security_group(GroupId=group)

    def _rule(self, inputs: dict, region: str, ingress: bool) -> tuple:
        ec2 = self.client("ec2", region)
        permission: dict[str, Any] = {"IpProtocol": inputs["ipProtocol"], "IpRanges": [{"CidrIp": inputs["cidrIpv4"]}]}
        if inputs["ipProtocol"] != "-1":
            permission |= {"FromPort": int(inputs["fromPort"]), "ToPort": int(inputs["toPort"])}
        authorize = ec2.authorize_security_group_ingress if ingress else ec2.authorize_security_group_egress
        revoke = ec2.revoke_security_group_ingress if ingress else ec2.revoke_security_group_egress
        rule = authorize(GroupId=inputs["securityGroupId"], IpPermissions=[permission])["SecurityGroupRules"][0]
        return {"id": rule["SecurityGroupRuleId"], "securityGroupRuleId": rule["SecurityGroupRuleId"]}, lambda: revoke(
            GroupId=inputs["securityGroupId"], SecurityGroupRuleIds=[rule["SecurityGroupRuleId"]]
        )

    def _security_group_ingress_rule(self, name: str, inputs: dict, region: str) -> tuple:
        return self._rule(inputs, region, ingress=True)

    def _security_group_egress_rule(self, name: str, inputs: dict, region: str) -> tuple:
        return self._rule(inputs, region, ingress=False)

    def _ec2_key_pair(self, name: str, inputs: dict, region: str) -> tuple:
        ec2 = self.client("ec2", region)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        made = ec2.import_key_pair(
            KeyName=inputs["keyName"],
            PublicKeyMaterial=public,
            TagSpecifications=[{"ResourceType": "key-pair", "Tags": tag_list(inputs.get("tags"))}],
        )
        return {"keyName": inputs["keyName"], "id": made["KeyPairId"]}, lambda: ec2.delete_key_pair(
            KeyName=inputs["keyName"]
        )

    def _cloudformation_stack(self, name: str, inputs: dict, region: str) -> tuple:
        cloudformation = self.client("cloudformation", region)
        stack = cloudformation.create_stack(
            StackName=inputs["name"],
            TemplateBody=inputs["templateBody"],
            Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in inputs["parameters"].items()],
            Tags=tag_list(inputs.get("tags")),
        )["StackId"]
        return {"id": stack, "outputs": dict(inputs["parameters"])}, lambda: cloudformation.delete_stack(
            StackName=stack
        )

    def _imagebuilder(self, name: str, region: str, resource: str) -> tuple:
        arn = f"arn:aws:imagebuilder:{region}:{self._account()}:{resource}/{auto_name(name).lower()}/1.0.0"
        return {"arn": arn, "id": arn}, lambda: None

    def _imagebuilder_component(self, name: str, inputs: dict, region: str) -> tuple:
        return self._imagebuilder(name, region, "component")

    def _imagebuilder_image_recipe(self, name: str, inputs: dict, region: str) -> tuple:
        return self._imagebuilder(name, region, "image-recipe")

    def _image_infrastructure(self, name: str, inputs: dict, region: str) -> tuple:
        return self._imagebuilder(name, region, "infrastructure-configuration")

    def _image_distribution(self, name: str, inputs: dict, region: str) -> tuple:
        outputs, delete = self._imagebuilder(name, region, "distribution-configuration")
        return {**outputs, "distributions": inputs["distributions"]}, delete

    def _imagebuilder_image(self, name: str, inputs: dict, region: str) -> tuple:
        ec2 = self.client("ec2", region)
        distribution = next(m for m in self.made if m.outputs.get("arn") == inputs["distributionConfigurationArn"])
        ami = distribution.outputs["distributions"][0]["amiDistributionConfiguration"]
        # moto gives a registered image a root snapshot of its own, as a build's image has one.
        image = ec2.register_image(
            Name=ami["name"].replace("{{ imagebuilder:buildDate }}", secrets.token_hex(4)),
            RootDeviceName="/dev/xvda",
            VirtualizationType="hvm",
        )["ImageId"]
        ec2.create_tags(Resources=[image], Tags=tag_list(ami.get("amiTags")))
        arn = f"arn:aws:imagebuilder:{region}:{self._account()}:image/{name}/1.0.0/1"
        # Deleting the image record leaves the AMI, as Image Builder's DeleteImage does.
        outputs = {"arn": arn, "id": arn, "outputResources": [{"amis": [{"image": image, "region": region}]}]}
        return outputs, lambda: None

    def _account(self) -> str:
        return self.admin.client("sts", region_name="us-east-1").get_caller_identity()["Account"]
