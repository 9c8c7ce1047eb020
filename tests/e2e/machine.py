"""A real OpenSSH server on 127.0.0.1, a non-root user to log in as, and a tarball server.

The remote steps run here exactly as pulumi-command runs them: one SSH session per command, the
command string sent as-is to the user's login shell, the stdin given, the exit status and stderr
returned. The sshd config is the stock one in what matters (no AcceptEnv beyond LANG LC_*).
"""

from __future__ import annotations

import hashlib
import http.server
import os
import pwd
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

USER = "annex-e2e"


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
    sessions: int = 0

    def run(self, command: str, stdin: str | None = None, timeout: float = 300) -> Result:
        """One SSH session, as the command provider opens one per command."""
        self.sessions += 1
        completed = subprocess.run(
            [
                "ssh",
                "-p",
                str(self.port),
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
                f"{self.user}@127.0.0.1",
                command,
            ],
            input=(stdin or "").encode(),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        return Result(completed.returncode, completed.stdout.decode(), completed.stderr.decode())


def start_sshd(workdir: Path) -> tuple[subprocess.Popen, Machine]:
    if os.geteuid() != 0:
        raise RuntimeError("the end-to-end tests need root: they create a user and run sshd (CI runs as root)")
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd).exists():
        raise RuntimeError("sshd is missing: apt-get install openssh-server (.ci/run does)")
    home = Path(f"/home/{USER}")
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", USER], check=True)
    # No password, but not locked: sshd refuses key logins to a locked ("!") account.
    subprocess.run(["usermod", "--password", "*", USER], check=True)
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
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {workdir}/sshd.pid\n"
        f"AuthorizedKeysFile {authorized}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM no\nStrictModes no\nAcceptEnv LANG LC_*\nPermitRootLogin no\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    process = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stderr=subprocess.DEVNULL)
    machine = Machine(port=port, user=USER, home=home, client_key=client_key)
    deadline = time.monotonic() + 20
    while machine.run("true").status != 0:
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("sshd on 127.0.0.1 did not accept a login within 20s")
        time.sleep(0.2)
    return process, machine


@dataclass
class TarballServer:
    """Serves stand-in tarballs on 127.0.0.1 and remembers what was asked for."""

    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    port: int = 0

    def start(self) -> None:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = httpd.server_address[1]
        threading.Thread(target=httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @staticmethod
    def sha256(body: bytes) -> str:
        return hashlib.sha256(body).hexdigest()
