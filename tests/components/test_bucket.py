import pytest

from tests.harness import Program, policy, run_program


@pytest.fixture(scope="module")
def program() -> Program:
    return run_program()


def test_bucket_is_force_destroyable_and_unversioned(program: Program):
    bucket = program.named("annex-us-east-1-config")
    assert bucket.inputs.get("forceDestroy") is True, "destroy must delete a bucket annexes wrote to"
    assert "versioning" not in bucket.inputs, "versions would keep deleted pool-password tarballs"


def test_public_access_blocked_and_owner_enforced(program: Program):
    block = program.named("annex-us-east-1-config-public-access")
    for setting in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
        assert block.inputs[setting] is True, f"annex-us-east-1-config-public-access: {setting} is not set"
    ownership = program.named("annex-us-east-1-config-ownership")
    assert ownership.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"


def test_encrypted(program: Program):
    rules = program.named("annex-us-east-1-config-encryption").inputs["rules"]
    assert rules[0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] in {"AES256", "aws:kms"}


def test_tls_only_policy(program: Program):
    tls_only = program.named("annex-us-east-1-config-tls-only")
    (statement,) = policy(tls_only)["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    bucket_arn = program.named("annex-us-east-1-config").outputs["arn"]
    assert statement["Resource"] == [bucket_arn, f"{bucket_arn}/*"]
    assert program.named("annex-us-east-1-config-public-access").urn in tls_only.dependencies
