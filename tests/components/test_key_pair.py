from components.contract import KEY_PAIR_NAME
from tests.harness import run_program


def test_key_pair_name_and_secret_private_key():
    program = run_program()
    key_pair = program.named("annex-key-pair")
    assert key_pair.type == "aws:ec2/keyPair:KeyPair"
    assert key_pair.inputs["keyName"] == KEY_PAIR_NAME
    private_key = program.named("annex-key-pair-private-key")
    assert key_pair.inputs["publicKey"] == private_key.outputs["publicKeyOpenssh"]
    assert private_key.inputs["algorithm"] == "RSA" and private_key.inputs["rsaBits"] >= 4096
    assert program.outputs["keyPairPrivateKey"].secret, "keyPairPrivateKey must be a secret output"
    assert program.outputs["keyPairName"].value == KEY_PAIR_NAME
