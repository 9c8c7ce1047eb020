"""KeyPair: the SSH key for debugging annex instances, made on the machine and imported into EC2."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.contract import KEY_PAIR_NAME
from components.machine import Machine, Step, machine_step

# The one line `ssh-keygen -y` prints for the RSA key the step makes.
PUBLIC_KEY_LINE = re.compile(r"^ssh-rsa [A-Za-z0-9+/]+={0,2}(?: [^\n]*)?$", re.M)


def public_key_line(stdout: str) -> str:
    """The public key in what the key pair step printed: the session's stdout also carries whatever
    the user's shell startup files print on a non-interactive SSH session (a bashrc's banner), which
    ImportKeyPair would refuse."""
    found = PUBLIC_KEY_LINE.findall(stdout)
    if not found:
        raise ValueError(f"the key pair step printed no ssh-rsa public key; it printed: {stdout[:500]!r}")
    return found[-1]


def key_pair_name(stack: str, joins: bool) -> str:
    """condor_annex -setup's fixed name for the stack that makes a region's setup; a joining stack's
    own name after its stack, since each user's annexes get their own key (EC2 allows 255 ASCII
    characters: the prefix and a Pulumi stack name of at most 100)."""
    return f"{KEY_PAIR_NAME}-{stack}" if joins else KEY_PAIR_NAME


@dataclass
class KeyPairArgs:
    machine: Machine
    # The private key's file name in ~/.condor, which the HTCondor version fixes.
    key_pair_file: str
    condor_dir: pulumi.Resource
    tags: dict[str, str] = field(default_factory=dict)
    key_name: str = KEY_PAIR_NAME
    # False only where no AWS provider can run: the machine-side program the engine tests run
    # (tests/engine/machine_side); the key file is then made and nothing is imported.
    imports_to_ec2: bool = True


class KeyPair(pulumi.ComponentResource):
    """`HTCondorAnnex-KeyPair` (or a joining user's own): ssh-keygen on the machine, and only its public
    key goes to AWS."""

    public_key: pulumi.Output[str]
    key_name: pulumi.Output[str]
    key_pair_file: str
    ready: pulumi.Resource

    def __init__(self, name: str, args: KeyPairArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("condor-annex:machine:KeyPair", name, None, opts)
        make = machine_step(
            args.machine,
            Step(
                name=f"{name}-make",
                script="key_pair.sh",
                values={"KEY_PAIR_FILE": args.key_pair_file},
                depends_on=[args.condor_dir],
                location=[args.key_pair_file],
                shows_stdout=False,
            ),
            parent=self,
        )
        self.public_key = make.stdout.apply(public_key_line)
        self.key_name = pulumi.Output.from_input(args.key_name)
        self.key_pair_file = f"~/.condor/{args.key_pair_file}"
        self.ready = make
        if args.imports_to_ec2:
            key_pair = aws.ec2.KeyPair(
                name,
                key_name=args.key_name,
                public_key=self.public_key,
                tags=args.tags,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.key_name = key_pair.key_name
            self.ready = key_pair
        self.register_outputs({"key_name": self.key_name, "key_pair_file": self.key_pair_file})
