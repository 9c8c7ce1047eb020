"""The host key every SSH step accepts, and the check that it is still the one the machine offers.

pulumi-command knows no known_hosts: given a key it accepts that key only, given none it accepts
any (InsecureIgnoreHostKey). So the program finds the key itself, as OpenSSH would: the pinned
`sshHostKey`, else the user's own `~/.ssh/known_hosts` as `ssh-keygen -F` reads it (hashed entries
too). And because the provider answers a changed key with 30 silent retries (about two minutes,
no fingerprint named), an up asks the machine for its key with `ssh-keyscan` before any step runs.
Checked against OpenSSH 9.2p1 (Debian 12): `ssh-keygen -F` output, `[host]:port` names, hashing.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pulumi

# The provider offers the server only the pinned key's type (HostKeyAlgorithms), so one key is
# pinned; ed25519 first, and ssh-rsa last, whose SHA-1 signatures OpenSSH 8.8+ servers refuse.
PREFERRED_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
)
SCAN_TIMEOUT_SECONDS = 5


class HostKeyError(pulumi.RunError):
    """The machine's host key is unknown or not the one known: nothing may run on it (the CLI prints
    the message alone, no traceback)."""


@dataclass(frozen=True)
class HostKey:
    type: str
    blob: str  # base64, as in known_hosts

    @property
    def line(self) -> str:
        """As pulumi-command's host_key takes it."""
        return f"{self.type} {self.blob}"

    @property
    def fingerprint(self) -> str:
        """As `ssh-keygen -l` and OpenSSH's prompts show it."""
        digest = hashlib.sha256(base64.b64decode(self.blob)).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_hosts_name(host: str, port: int) -> str:
    """The name OpenSSH records a host under: `host`, or `[host]:port` off port 22."""
    return host if port == 22 else f"[{host}]:{port}"


def pin_command(host: str, port: int, user: str) -> str:
    """The one command that shows the key's fingerprint to confirm and records it in known_hosts."""
    return f"ssh -p {port} {user}@{host} true"


def _keys_in(lines: str) -> list[HostKey]:
    keys = []
    for line in lines.splitlines():
        fields = line.split()
        # Comments, and @cert-authority / @revoked lines: neither is a key to pin.
        if len(fields) < 3 or fields[0].startswith(("#", "@")):
            continue
        keys.append(HostKey(fields[1], fields[2]))
    return keys


def known_host_keys(host: str, port: int, known_hosts: Path) -> list[HostKey]:
    """The keys known_hosts holds for the host and port, in OpenSSH's own reading of the file."""
    if not known_hosts.is_file():
        return []
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        raise HostKeyError(
            f"ssh-keygen (OpenSSH's client tools) is needed to read {known_hosts}; install openssh-client, "
            "or set condor-annex:sshHostKey"
        )
    # Exit status 1 means no entry; the output is what counts.
    found = subprocess.run(
        [keygen, "-F", known_hosts_name(host, port), "-f", str(known_hosts)],
        capture_output=True,
        text=True,
        check=False,
    )
    return _keys_in(found.stdout)


def preferred(keys: list[HostKey]) -> HostKey | None:
    ranked = [key for key in keys if key.type in PREFERRED_TYPES]
    return min(ranked, key=lambda key: PREFERRED_TYPES.index(key.type), default=None)


def offered_host_key(host: str, port: int, key_type: str) -> HostKey | None:
    """The key of that type the machine offers now, or None when it cannot be asked."""
    keyscan = shutil.which("ssh-keyscan")
    if keyscan is None:
        return None
    try:
        scanned = subprocess.run(
            [keyscan, "-T", str(SCAN_TIMEOUT_SECONDS), "-p", str(port), "-t", key_type, host],
            capture_output=True,
            text=True,
            check=False,
            # -T bounds each read, not the name lookup before it.
            timeout=SCAN_TIMEOUT_SECONDS * 3,
        )
    except subprocess.TimeoutExpired:
        return None
    keys = _keys_in(scanned.stdout)
    return keys[0] if keys else None


@dataclass(frozen=True)
class HostKeyCheck:
    host: str
    port: int
    user: str
    pinned: str | None  # sshHostKey, `<type> <base64>`
    accepts_any: bool  # sshAcceptAnyHostKey: a throwaway machine
    # The machine is gone (machineGone): the known key if any, never asked of the machine.
    gone: bool
    known_hosts: Path


def verified_host_key(check: HostKeyCheck) -> str | None:
    """The key every step accepts; in an update, raises HostKeyError when none is known, or when the
    machine now offers another. A preview never reaches the machine, so it needs no known key."""
    if check.accepts_any:
        pulumi.log.warn(
            f"condor-annex:sshAcceptAnyHostKey is true: the steps accept any host key from {check.host}, "
            "so anyone between here and there can take the connection"
        )
        return None
    if check.pinned:
        key_type, blob = check.pinned.split()
        expected: HostKey | None = HostKey(key_type, blob)
        source = "condor-annex:sshHostKey"
    else:
        expected = preferred(known_host_keys(check.host, check.port, check.known_hosts))
        source = f"{check.known_hosts} ({known_hosts_name(check.host, check.port)})"
    if expected is None:
        if check.gone:
            return None
        if pulumi.runtime.is_dry_run():
            # A preview never dials the machine, and a pull request's runner has no known_hosts.
            pulumi.log.warn(
                f"the host key of {check.host} port {check.port} is not in {check.known_hosts}: this preview shows "
                "the machine's steps without it, and `pulumi up` will refuse to run them until it is recorded: "
                f"{pin_command(check.host, check.port, check.user)} shows its fingerprint to check and records it. "
                "Pin it with condor-annex:sshHostKey for previews that match the up"
            )
            return None
        raise HostKeyError(
            f"the host key of {check.host} port {check.port} is not in {check.known_hosts}, so nothing was run. "
            f"Check its fingerprint and record it: {pin_command(check.host, check.port, check.user)} "
            "(then `pulumi up` again). Or pin it with condor-annex:sshHostKey, or, for a throwaway machine "
            "only, set condor-annex:sshAcceptAnyHostKey true"
        )
    if check.gone or pulumi.runtime.is_dry_run():
        return expected.line
    offered = offered_host_key(check.host, check.port, expected.type)
    if offered is None:
        pulumi.log.info(
            f"could not ask {check.host} port {check.port} for its host key now; every step accepts only "
            f"{expected.fingerprint} from {source}"
        )
    elif offered != expected:
        raise HostKeyError(
            f"the host key of {check.host} port {check.port} has changed, so nothing was run: {source} holds "
            f"{expected.type} {expected.fingerprint}, the machine now offers {offered.fingerprint}. If the "
            "machine was reinstalled, remove the old key "
            f"(ssh-keygen -R '{known_hosts_name(check.host, check.port)}') and record the new one "
            f"({pin_command(check.host, check.port, check.user)}), or set condor-annex:sshHostKey to it; "
            "otherwise someone may be in the middle of the connection"
        )
    return expected.line
