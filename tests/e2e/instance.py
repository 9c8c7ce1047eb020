"""An annex instance played here: a network namespace for its link, and a mount, UTS and PID namespace
of its own, so that the image's files, its hostname and its processes are its alone.

- The image: the build and validate steps of the Image Builder component document the stack
  registers, run as Image Builder runs them (each step's commands as a bash script, as root), in
  the instance's private /etc (a copy), /opt/condor, /var/lib/condor, /var/log/condor, /var/lock
  /condor, /usr/libexec/condor and /tmp. The one step not run is `InstallPackages` (dnf, on Amazon
  Linux 2023): what it installs is checked to be here instead (`PACKAGE_COMMANDS`).
- Its firewall: the security group's registered ingress rules, as iptables rules of its namespace
  (everything else inbound dropped, as EC2 drops it).
- Its boot: the units the image enabled, as systemd would run them: condor-annex-ec2.service's
  ExecStart (HTCondor's boot script), then condor.service's (condor_master -f), with systemd's
  PATH. One thing is added: AWS_CA_BUNDLE names the test's CA for the AWS CLI, which, unlike the
  system's libraries, does not read the system's trust store here (pip's awscli takes certifi's).
- Its end: as EC2 terminates an instance, an orderly shutdown first (condor.service's KillSignal,
  SIGQUIT, to the master: its daemons leave the pool), then everything in it is gone. When the
  instance shuts itself down (50ec2.config's master shutdown script runs `/sbin/shutdown -h now`
  once the annex has no work), `shutdown` is systemctl, which here only records the request
  (SHUTDOWN_MARK): the machine running the tests must not go down with it. EC2 turns an instance
  shut down from inside into a terminated one (condor_annex launches with instance-initiated
  shutdown behavior terminate), which the test's EC2 then does.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.netns import exec_prefix

# The directories the image's build writes outside /etc (which is a copy of the machine's).
IMAGE_DIRS = ("/opt/condor", "/var/lib/condor", "/var/log/condor", "/var/lock/condor", "/usr/libexec/condor", "/tmp")
# What the image's InstallPackages step provides on Amazon Linux 2023, and its own image the rest.
PACKAGE_COMMANDS = ("iptables", "tar", "gzip", "curl", "useradd", "sha256sum", "aws")
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
UNITS = "/etc/systemd/system"
# Where the instance's systemctl (shutdown, poweroff) records that it was asked to stop, in its /etc.
SHUTDOWN_MARK = "condor-annex-test-shutdown"


@dataclass
class InstanceHost:
    """The namespaces one instance lives in, and how to run commands there as root."""

    network: str
    address: str
    init_pid: int
    aws_cli_dir: str
    ca_file: str
    etc: Path

    @property
    def asked_to_shut_down(self) -> bool:
        return (self.etc / SHUTDOWN_MARK).exists()

    @property
    def hostname(self) -> str:
        return f"ip-{self.address.replace('.', '-')}.ec2.internal"

    def command(self, script: str, environment: dict[str, str] | None = None) -> list[str]:
        env = [
            "env",
            "-i",
            f"PATH={self.aws_cli_dir}:{SYSTEMD_PATH}",
            "HOME=/root",
            *(f"{k}={v}" for k, v in (environment or {}).items()),
        ]
        return ["nsenter", "-t", str(self.init_pid), "-m", "-u", "-n", "-p", "--", *env, "bash", "-c", script]

    def run(
        self, script: str, stdin: str = "", timeout: float = 300, environment: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.command(script, environment), input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )

    def start(self, script: str, environment: dict[str, str] | None = None) -> subprocess.Popen:
        return subprocess.Popen(self.command(script, environment), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_host(
    network: str, address: str, workdir: Path, hosts: dict[str, str], aws_cli_dir: str, ca_pem: bytes
) -> InstanceHost:
    """The instance's namespaces, with its /etc a copy of this machine's under its own hostname."""
    etc = workdir / "instance-etc"
    subprocess.run(["rm", "-rf", str(etc)], check=True)
    subprocess.run(["cp", "-a", "/etc/.", str(etc)], check=True)
    hostname = f"ip-{address.replace('.', '-')}.ec2.internal"
    lines = ["127.0.0.1 localhost", f"{address} {hostname} {hostname.split('.')[0]}"]
    lines += [f"{where} {name}" for name, where in sorted(hosts.items())]
    (etc / "hosts").write_text("\n".join(lines) + "\n")
    (etc / "resolv.conf").unlink(missing_ok=True)
    (etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    ca_file = "/etc/condor-annex-test-ca.pem"
    (etc / ca_file.removeprefix("/etc/")).write_bytes(ca_pem)
    systemctl = workdir / "instance-systemctl"
    systemctl.write_text(f'#!/bin/sh\necho "systemctl $*" >> /etc/{SHUTDOWN_MARK}\n')
    systemctl.chmod(0o755)
    mounts = " && ".join(f"mkdir -p {d} && mount -t tmpfs tmpfs {d}" for d in IMAGE_DIRS)
    # The AWS CLI (the image's package) is this venv's, and the venv may be under /tmp too (a clone
    # in /tmp): it is held in the instance's /etc across the tmpfs, then put back where it was.
    venv = shlex.quote(str(Path(aws_cli_dir).parent))
    held = etc / "condor-annex-test-venv"
    held.mkdir()
    # The binds first: the workdir may be under /tmp, which the instance gets a tmpfs of.
    script = (
        f"hostname {hostname} && mount --bind {venv} {shlex.quote(str(held))}"
        f" && mount --rbind {shlex.quote(str(etc))} /etc"
        f" && mount --bind {shlex.quote(str(systemctl))} $(readlink -f /sbin/shutdown)"
        f" && {mounts} && mkdir -p {venv} && mount --bind /etc/{held.name} {venv} && exec sleep infinity"
    )
    launcher = subprocess.Popen(
        [
            *exec_prefix(network),
            "unshare",
            "--mount",
            "--uts",
            "--pid",
            "--fork",
            "--mount-proc",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read_text().split()
        if children and "sleep" in Path(f"/proc/{children[0]}/cmdline").read_bytes().decode(errors="replace"):
            return InstanceHost(network, address, int(children[0]), aws_cli_dir, ca_file, etc)
        time.sleep(0.1)
    launcher.kill()
    raise RuntimeError("the instance's namespaces did not come up")


def build_steps(document: str) -> list[tuple[str, str]]:
    """(phase/step, script) of every build and validate step the component document holds."""
    parsed = json.loads(document)
    return [
        (f"{phase['name']}/{step['name']}", "\n".join(step["inputs"]["commands"]))
        for phase in parsed["phases"]
        if phase["name"] in ("build", "validate")
        for step in phase["steps"]
    ]


def build_image(host: InstanceHost, document: str) -> dict[str, str]:
    """Run the document's steps as Image Builder would, but the packages one; each step's output."""
    missing = [tool for tool in PACKAGE_COMMANDS if host.run(f"command -v {tool}").returncode != 0]
    assert not missing, f"what InstallPackages provides on Amazon Linux 2023 is missing here: {missing}"
    outputs = {}
    for name, script in build_steps(document):
        if name == "build/InstallPackages":
            continue
        done = host.run("bash -s", stdin=script)
        assert done.returncode == 0, f"image step {name} failed: {done.stdout}{done.stderr}"
        outputs[name] = done.stdout + done.stderr
    return outputs


def admit(host: InstanceHost, rules: list[dict[str, object]]) -> None:
    """The security group's ingress rules as the instance's firewall; everything else in is dropped."""
    iptables = [*exec_prefix(host.network), "iptables"]
    subprocess.run([*iptables, "-F", "INPUT"], check=True)
    subprocess.run([*iptables, "-A", "INPUT", "-i", "lo", "-j", "ACCEPT"], check=True)
    subprocess.run(
        [*iptables, "-A", "INPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"], check=True
    )
    for rule in rules:
        subprocess.run(
            [
                *iptables,
                "-A",
                "INPUT",
                "-p",
                str(rule["ipProtocol"]),
                "-s",
                str(rule["cidrIpv4"]),
                "--dport",
                str(int(rule["fromPort"])),
                "-j",
                "ACCEPT",
            ],
            check=True,
        )
    subprocess.run([*iptables, "-P", "INPUT", "DROP"], check=True)


def exec_start(host: InstanceHost, unit: str) -> str:
    text = host.run(f"cat {UNITS}/{unit}").stdout
    found = re.search(r"^ExecStart=(.+)$", text, re.M)
    assert found, f"{unit} has no ExecStart: {text}"
    enabled = host.run(f"test -L {UNITS}/multi-user.target.wants/{unit}")
    assert enabled.returncode == 0, f"{unit} is not enabled in the image"
    return found.group(1)


@dataclass
class Booted:
    host: InstanceHost
    boot_log: str
    master: subprocess.Popen


# HTCondor's boot script retries a failed AWS call for most of an hour; here a minute or two is plenty.
BOOT_TIMEOUT = 180


def boot(host: InstanceHost) -> Booted:
    """The image's units, in their order: the boot script (to its end), then condor_master."""
    environment = {"AWS_CA_BUNDLE": host.ca_file}
    script = subprocess.Popen(
        host.command(exec_start(host, "condor-annex-ec2.service"), environment),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = script.communicate(timeout=BOOT_TIMEOUT)
    except subprocess.TimeoutExpired:
        # Inside, it goes on (nsenter is only its parent) and keeps the pipe open: end it there.
        host.run("pkill -KILL -f condor-annex-ec2")
        script.kill()
        output, _ = script.communicate()
    # What it found, step by step, goes to the config file it writes (its stdout, the units' journal).
    found = host.run("cat /etc/condor/config.d/49ec2-instance.config").stdout
    log = f"{output}\n{found}"
    assert script.returncode == 0, f"HTCondor's boot script failed (status {script.returncode}): {log}"
    master = host.start(exec_start(host, "condor.service"))
    return Booted(host, log, master)


def shut_down(booted: Booted, timeout: float = 150) -> None:
    """As EC2 terminates it: condor.service stopped (SIGQUIT to the master), then the machine gone."""
    if booted.master.poll() is None:
        pids = booted.host.run("pgrep -x condor_master").stdout.split()
        for pid in pids:
            booted.host.run(f"kill -QUIT {pid}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and booted.host.run("pgrep -x condor_master").returncode == 0:
            time.sleep(1)
    stop_host(booted.host)


def stop_host(host: InstanceHost) -> None:
    try:
        Path(f"/proc/{host.init_pid}").stat()
    except FileNotFoundError:
        return
    # The PID namespace's first process: when it goes, the kernel ends everything else in it.
    subprocess.run(["kill", "-KILL", str(host.init_pid)], check=False)
    for _ in range(100):
        if not Path(f"/proc/{host.init_pid}").exists():
            return
        time.sleep(0.1)
    raise RuntimeError(f"the instance's first process ({host.init_pid}) outlived SIGKILL")
