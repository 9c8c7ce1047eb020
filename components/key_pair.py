"""KeyPair: the SSH key for debugging annex instances."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_tls as tls

from components.contract import KEY_PAIR_NAME


@dataclass
class KeyPairArgs:
    tags: dict[str, str] = field(default_factory=dict)


class KeyPair(pulumi.ComponentResource):
    """`HTCondorAnnex-KeyPair`, its private key held only as a secret."""

    key_name: pulumi.Output[str]
    private_key_pem: pulumi.Output[str]

    def __init__(self, name: str, args: KeyPairArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("condor-annex:aws:KeyPair", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # RSA rather than Ed25519: the published annex images predate Ed25519 support.
        private_key = tls.PrivateKey(f"{name}-private-key", algorithm="RSA", rsa_bits=4096, opts=child)
        key_pair = aws.ec2.KeyPair(
            name, key_name=KEY_PAIR_NAME, public_key=private_key.public_key_openssh, tags=args.tags, opts=child
        )

        self.key_name = key_pair.key_name
        self.private_key_pem = pulumi.Output.secret(private_key.private_key_pem)
        self.register_outputs({"key_name": self.key_name})
