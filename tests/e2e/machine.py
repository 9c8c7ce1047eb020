"""A real OpenSSH server on loopback, a non-root user to log in as, and a tarball server.

The remote steps run here exactly as pulumi-command runs them: one SSH session per command, the
command string sent as-is to the user's login shell, the stdin given, the exit status and stderr
returned. The sshd config is the stock one in what matters (no AcceptEnv beyond LANG LC_*).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import os
import pwd
import shlex
import shutil
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

USER = "annex-e2e"
# The address the program is given for the SSH path: loopback, but not one of the names (localhost,
# 127.0.0.1, ::1) that make the program run its steps locally instead.
SSH_HOST = "127.0.0.2"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Result:
    status: int
    stdout: str
    stderr: str


@dataclass
class Machine:
    port: int
    user: str
    home: Path
    client_key: Path
    # The public half of sshd's host key.
    host_key: Path
    sessions: int = 0
    refused_dials: int = 0
    # The network namespace the machine is in (tests/e2e/netns.py), None for this one's.
    namespace: str | None = None
    # The loopback address its sshd listens on.
    host: str = SSH_HOST

    def run(
        self, command: str, stdin: str | None = None, connection: dict | None = None, timeout: float = 300
    ) -> Result:
        """One SSH session, as the command provider opens one per command.

        Given the connection a step registered, it dials that port and, like the provider, retries
        a refused dial up to the connection's dialErrorLimit before giving up (a second apart;
        the provider's back-off differs in its delays, not in what it retries).
        """
        port = int(connection["port"]) if connection else self.port
        host = connection["host"] if connection else self.host
        dial_error_limit = int(connection.get("dialErrorLimit", 10)) if connection else 0
        for dials in range(1, dial_error_limit + 2):
            self.sessions += 1
            result = self._ssh(host, port, command, stdin, timeout)
            refused = result.status == 255 and "Connection refused" in result.stderr
            if not refused or dials > dial_error_limit:
                return result
            self.refused_dials += 1
            time.sleep(1)
        return result

    def run_here(self, command: str, stdin: str | None = None, timeout: float = 300) -> Result:
        """As pulumi-command's local.Command runs a command for a user running `pulumi up` on the
        machine itself: `/bin/sh -c` as that user, in a process of its own, with that user's HOME."""
        account = pwd.getpwnam(self.user)
        completed = subprocess.run(
            ["/bin/sh", "-c", command],
            input=(stdin or "").encode(),
            capture_output=True,
            timeout=timeout,
            check=False,
            user=account.pw_uid,
            group=account.pw_gid,
            extra_groups=[],
            cwd=account.pw_dir,
            env={
                "HOME": account.pw_dir,
                "USER": self.user,
                "LOGNAME": self.user,
                "PATH": "/usr/local/bin:/usr/bin:/bin",
            },
        )
        return Result(completed.returncode, completed.stdout.decode(), completed.stderr.decode())

    def _ssh(self, host: str, port: int, command: str, stdin: str | None, timeout: float) -> Result:
        completed = subprocess.run(
            [
                *(["ip", "netns", "exec", self.namespace] if self.namespace else []),
                "ssh",
                "-p",
                str(port),
                "-i",
                str(self.client_key),
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
                f"{self.user}@{host}",
                command,
            ],
            input=(stdin or "").encode(),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        return Result(completed.returncode, completed.stdout.decode(), completed.stderr.decode())


def reset_home(machine: Machine) -> None:
    """The SSH user's home as useradd made it, with none of its processes left running."""
    subprocess.run(["pkill", "-KILL", "-u", machine.user], check=False)
    subprocess.run(["crontab", "-r", "-u", machine.user], capture_output=True, check=False)
    shutil.rmtree(machine.home, ignore_errors=True)
    shutil.copytree("/etc/skel", machine.home)
    subprocess.run(["chown", "-R", f"{machine.user}:{machine.user}", str(machine.home)], check=True)
    machine.home.chmod(0o750)
    for lock in lock_dirs():
        shutil.rmtree(lock, ignore_errors=True)


def lock_dirs() -> list[Path]:
    """The LOCK directories HTCondor installs make under /tmp (condor-lock-X 9.0+, condor-lock.X 8.7)."""
    return list(Path("/tmp").glob("condor-lock*"))


def readable_by_everyone(path: Path) -> Path:
    """The path, with it and every directory above it open to other accounts (the SSH user, the
    tests' other accounts) to enter and read."""
    for parent in [path, *path.parents]:
        if parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o755)
    return path


@contextlib.contextmanager
def opened_to_everyone(path: Path) -> Iterator[Path]:
    """readable_by_everyone for a while: the modes of the path and the directories above it put back
    after (for a place the test does not own, as the clone)."""
    modes = {each: each.stat().st_mode for each in [path, *path.parents]}
    try:
        yield readable_by_everyone(path)
    finally:
        for each, mode in modes.items():
            each.chmod(mode)


def local_account(user: str) -> Path:
    """A Unix account of this machine, made if missing; its home."""
    try:
        pwd.getpwnam(user)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", user], check=True)
    # No password, but not locked: sshd refuses key logins to a locked ("!") account.
    subprocess.run(["usermod", "--password", "*", user], check=True)
    return Path(f"/home/{user}")


def start_sshd(
    workdir: Path, namespace: str | None = None, user: str = USER, host: str = SSH_HOST
) -> tuple[subprocess.Popen, Machine]:
    """sshd on host (SSH_HOST), in this network namespace or the one named, for the user (the e2e user)."""
    if os.geteuid() != 0:
        raise RuntimeError("the end-to-end tests need root: they create a user and run sshd (CI runs as root)")
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd).exists():
        raise RuntimeError("sshd is missing: apt-get install openssh-server (.ci/run does)")
    home = local_account(user)
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o755)  # noqa: S103 - sshd reads its keys and the SSH user its bindings here
    host_key = workdir / "host_key"
    client_key = workdir / "client_key"
    for key in (host_key, client_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    authorized = workdir / "authorized_keys"
    shutil.copy(f"{client_key}.pub", authorized)
    os.chmod(authorized, 0o644)
    port = free_port()
    config = workdir / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress {host}\nHostKey {host_key}\nPidFile {workdir}/sshd.pid\n"
        f"AuthorizedKeysFile {authorized}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM no\nStrictModes no\nAcceptEnv LANG LC_*\nPermitRootLogin no\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    process = subprocess.Popen([*prefix, sshd, "-D", "-e", "-f", str(config)], stderr=subprocess.DEVNULL)
    machine = Machine(
        port=port,
        user=user,
        home=home,
        client_key=client_key,
        host_key=Path(f"{host_key}.pub"),
        namespace=namespace,
        host=host,
    )
    deadline = time.monotonic() + 20
    while machine.run("true").status != 0:
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"sshd on {host} did not accept a login within 20s")
        time.sleep(0.2)
    return process, machine


class LatePort:
    """A port that refuses connections until `opens_after` seconds, then forwards them to sshd:
    a machine that is still booting, or whose sshd is restarting."""

    def __init__(self, target: int, opens_after: float, listen: str = SSH_HOST) -> None:
        self.port = free_port()
        self.target = target
        self.listen = listen
        # Connections it forwarded: the SSH connections a client opened through it.
        self.accepted = 0
        self._closing = threading.Event()
        threading.Thread(target=self._serve, args=(opens_after,), daemon=True).start()

    def _serve(self, opens_after: float) -> None:
        time.sleep(opens_after)
        with socket.create_server((self.listen, self.port)) as listener:
            listener.settimeout(0.2)
            while not self._closing.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                self.accepted += 1
                upstream = socket.create_connection((SSH_HOST, self.target))
                for source, sink in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        # Either side closing ends both directions; the other pump then meets a closed socket.
        with source, sink, contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)

    def close(self) -> None:
        self._closing.set()


@dataclass
class Stall:
    """A download that sends half its body and then hangs until released, as a dying link does (or a
    slow one, which then sends the rest)."""

    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    # Released, a slow link sends the rest; a dying one (the default) closes the connection.
    then_the_rest: bool = False


@dataclass
class TarballServer:
    """Serves stand-in tarballs on 127.0.0.1 and remembers what was asked for."""

    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    # HEAD requests (the preflight's "is it there?"), apart from the downloads.
    heads: list[str] = field(default_factory=list)
    ranges: list[str] = field(default_factory=list)
    # The next request for each of these paths stalls half-way (once).
    stalls: dict[str, Stall] = field(default_factory=dict)
    address: str = "127.0.0.1"
    port: int = 0

    def start(self, listener: socket.socket | None = None) -> None:
        """Serve on 127.0.0.1, or on a socket made elsewhere (in another network namespace)."""
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                server.heads.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()

            def do_GET(self) -> None:
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                # Byte ranges as a real web server serves them: `bytes=N-` continues a download.
                start = 0
                asked = self.headers.get("Range", "")
                if asked:
                    server.ranges.append(asked)
                    start = int(asked.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                self.send_response(206 if asked else 200)
                if asked:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                stall = server.stalls.pop(self.path, None)
                if stall:
                    self.wfile.write(body[start : start + (len(body) - start) // 2])
                    self.wfile.flush()
                    stall.reached.set()
                    stall.release.wait(timeout=120)
                    if stall.then_the_rest:
                        self.wfile.write(body[start + (len(body) - start) // 2 :])
                    return
                self.wfile.write(body[start:])

            def log_message(self, *args: object) -> None:
                pass

        if listener is None:
            httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        else:
            httpd = http.server.ThreadingHTTPServer(listener.getsockname(), Handler, bind_and_activate=False)
            httpd.socket.close()
            httpd.socket = listener
        self.address, self.port = httpd.server_address[:2]
        threading.Thread(target=httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://{self.address}:{self.port}{path}"

    @staticmethod
    def sha256(body: bytes) -> str:
        return hashlib.sha256(body).hexdigest()


# Appended to by HTCondor's tools each time a step runs them: a re-run of every step grows them.
GROWS_ON_EVERY_RUN = {
    ".condor/AnnexLog",
    ".condor/AnnexGahpLog",
    ".condor/AnnexAuditLog",
    ".condor/AnnexCommand.state",
    ".condor/known_hosts",
}


def crontab_of(user: str) -> str | None:
    """The user's crontab as `crontab -l` prints it, None when they have none."""
    listed = subprocess.run(["crontab", "-l", "-u", user], capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        assert "no crontab for" in listed.stderr, listed.stderr
        return None
    return listed.stdout


def snapshot(home: Path, skip: set[str] = frozenset()) -> dict[str, tuple[int, str]]:
    """Every path under home with its mode and content digest, and the home's owner's crontab."""
    crontab = crontab_of(home.owner())
    found = {"(crontab)": (0, "none" if crontab is None else hashlib.sha256(crontab.encode()).hexdigest())}
    for path in sorted(home.rglob("*")):
        relative = str(path.relative_to(home))
        if relative in skip or any(relative.startswith(f"{s}/") for s in skip):
            continue
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(info.st_mode) else ""
        found[relative] = (stat.S_IMODE(info.st_mode), digest)
    return found


def read_config(
    machine: Machine, bindings: str, install_dir: Path, names: list[str], subsystem: str | None = None
) -> dict[str, str | None]:
    """Ask the htcondor wheel's real parser as the user, so ~/.condor/user_config is read as well; as
    a tool, or as a daemon subsystem (condor_annex reads its configuration as ANNEX)."""
    as_subsystem = (
        f"htcondor2.set_subsystem({subsystem!r}, htcondor2.SubsystemType.Daemon); htcondor2.reload_config(); "
        if subsystem
        else ""
    )
    script = (
        f"import json,sys; sys.path.insert(0, {bindings!r}); import htcondor2; {as_subsystem}"
        "print(json.dumps({n: htcondor2.param.get(n) for n in sys.argv[1:]}))"
    )
    command = shlex.join(["env", f"CONDOR_CONFIG={install_dir}/etc/condor_config", "/usr/bin/python3", "-c", script])
    result = machine.run(f"{command} {shlex.join(names)}")
    assert result.status == 0, result.stderr
    return json.loads(result.stdout)


def master_pids(machine: Machine) -> list[str]:
    """The user's live condor_master processes (a killed one stays a zombie here: PID 1 reaps none)."""
    listed = subprocess.run(["ps", "-ww", "-u", machine.user, "-o", "pid=,stat=,args="], capture_output=True, text=True)
    return [
        pid
        for pid, state, args in (line.split(None, 2) for line in listed.stdout.splitlines())
        if "condor_master" in args and not state.startswith("Z")
    ]


def master_running(machine: Machine) -> bool:
    return bool(master_pids(machine))


def host_key_line(public_key: Path) -> str:
    """`<type> <base64>` of a .pub file: the form sshHostKey and known_hosts take."""
    return " ".join(public_key.read_text().split()[:2])


def our_cron_lines(machine: Machine) -> list[str]:
    """The entries between our markers in the user's crontab."""
    listed = machine.run("crontab -l")
    assert listed.status == 0, listed.stderr
    block = listed.stdout.split("# BEGIN condor-annex")[1].split("# END condor-annex")[0]
    return [line for line in block.splitlines()[1:] if line and not line.startswith("#")]


def as_cron_runs(machine: Machine, entry: str) -> None:
    """A crontab entry's command as cron runs it: `/bin/sh -c` as the user, in their home, with only
    the environment cron gives a job (HOME, LOGNAME, SHELL=/bin/sh, PATH=/usr/bin:/bin); in the
    machine's network namespace, if it has one."""
    command = entry.split(None, 1)[1] if entry.startswith("@") else entry.split(None, 5)[5]
    environment = [f"HOME={machine.home}", f"LOGNAME={machine.user}", "SHELL=/bin/sh", "PATH=/usr/bin:/bin"]
    in_namespace = ["ip", "netns", "exec", machine.namespace] if machine.namespace else []
    ran = subprocess.run(
        [*in_namespace, "runuser", "-u", machine.user, "--", "env", "-i", *environment, "/bin/sh", "-c", command],
        cwd=machine.home,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
