"""Hosts played by network namespaces: what crosses a network is tested here without leaving the machine.

Each namespace has a loopback and veth links with link-local addresses to the one that plays the
internet, and nothing routed beyond them. `ip netns exec` gives a process the namespace's own
/etc/hosts, /etc/resolv.conf and, where a test writes one, /etc/ssl (files under /etc/netns/<name>/,
bound over /etc's), so a namespace can resolve AWS's hostnames to a local server and trust its CA.
A thread of this process can enter a namespace for a while (`inside`): a socket it opens there
stays there, which is how servers of this process listen in the namespace that plays the internet.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")
NETNS_ETC = Path("/etc/netns")
_libc = ctypes.CDLL("libc.so.6", use_errno=True)
T = TypeVar("T")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _setns(descriptor: int) -> None:
    if _libc.setns(descriptor, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns failed")


@contextlib.contextmanager
def inside(namespace: str) -> Iterator[None]:
    """The calling thread in the namespace until the block ends (sockets opened there stay there)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(NETNS_DIR / namespace, os.O_RDONLY)
    try:
        _setns(target)
        yield
    finally:
        _setns(own)
        os.close(own)
        os.close(target)


def run_inside(namespace: str, call: Callable[[], T]) -> T:
    with inside(namespace):
        return call()


def exec_prefix(namespace: str) -> list[str]:
    """A command line's prefix that runs it in the namespace, with its /etc/netns files."""
    return ["ip", "netns", "exec", namespace]


@dataclass
class Link:
    """A veth pair from the internet's namespace to a host's: an address on each end."""

    host: str
    internet_address: str
    host_address: str
    prefix: int = 24


@dataclass
class Network:
    """One namespace playing the internet (it routes between its links) and hosts linked to it."""

    internet: str
    links: list[Link] = field(default_factory=list)

    @property
    def namespaces(self) -> list[str]:
        return [self.internet, *(link.host for link in self.links)]

    def create(self) -> None:
        self.destroy()
        for namespace in self.namespaces:
            ip("netns", "add", namespace)
            ip("-n", namespace, "link", "set", "lo", "up")
        # Its own forwarding, not this machine's: net.ipv4.ip_forward is per namespace.
        subprocess.run([*exec_prefix(self.internet), "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], check=True)
        for link in self.links:
            outer, inner = self._ends(link)
            ip("link", "add", outer, "netns", self.internet, "type", "veth", "peer", "name", inner, "netns", link.host)
            ip("-n", self.internet, "addr", "add", f"{link.internet_address}/{link.prefix}", "dev", outer)
            ip("-n", self.internet, "link", "set", outer, "up")
            self.host_end(link, up=True)

    def _ends(self, link: Link) -> tuple[str, str]:
        """The link's veth devices: the internet's end, the host's."""
        index = self.links.index(link)
        return f"{self.internet[:8]}{index}a", f"{self.internet[:8]}{index}b"

    def host_end(self, link: Link, up: bool) -> None:
        """The host's end of the link up, with its address and default route; or down without them,
        as on a machine whose network is not up yet."""
        _, inner = self._ends(link)
        if up:
            ip("-n", link.host, "addr", "add", f"{link.host_address}/{link.prefix}", "dev", inner)
            ip("-n", link.host, "link", "set", inner, "up")
            ip("-n", link.host, "route", "add", "default", "via", link.internet_address)
        else:
            ip("-n", link.host, "addr", "flush", "dev", inner)
            ip("-n", link.host, "link", "set", inner, "down")

    def add_address(self, namespace: str, address: str) -> None:
        """One more address, on the namespace's loopback (a service of the internet's, the metadata service's)."""
        ip("-n", namespace, "addr", "add", f"{address}/32", "dev", "lo")

    def destroy(self) -> None:
        for namespace in self.namespaces:
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False)
            shutil.rmtree(NETNS_ETC / namespace, ignore_errors=True)


def write_etc(namespace: str, hosts: dict[str, str], ca_pem: bytes | None = None) -> Path:
    """The namespace's /etc/hosts (name -> address), a resolv.conf that asks no one, and with a CA,
    /etc/ssl with the CA added to the system's bundle. Files are rewritten in place, so processes
    already in the namespace see later names too."""
    etc = NETNS_ETC / namespace
    etc.mkdir(parents=True, exist_ok=True)
    lines = ["127.0.0.1 localhost"] + [f"{address} {name}" for name, address in sorted(hosts.items())]
    hosts_file = etc / "hosts"
    with open(hosts_file, "w") as written:  # in place: a bind mount keeps the inode
        written.write("\n".join(lines) + "\n")
    hosts_file.chmod(0o644)
    (etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    (etc / "resolv.conf").chmod(0o644)
    if ca_pem is not None and not (etc / "ssl").exists():
        shutil.copytree("/etc/ssl", etc / "ssl", symlinks=True)
        bundle = etc / "ssl" / "certs" / "ca-certificates.crt"
        system = Path("/etc/ssl/certs/ca-certificates.crt").read_bytes()
        bundle.unlink()
        bundle.write_bytes(system + ca_pem)
        bundle.chmod(0o644)
    return etc
