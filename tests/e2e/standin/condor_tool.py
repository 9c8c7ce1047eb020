"""A stand-in for the HTCondor tools our remote steps call, for tests where no real condor can run.

Faithful where our scripts depend on it, from HTCondor's sources and manuals:
- configuration is read by the `htcondor` wheel's real parser (`htcondor2.param`), from
  CONDOR_CONFIG as `condor.sh` sets it, including ~/.condor/user_config;
- `make-personal-from-tarball` (9.0+) refuses root, takes the current directory as RELEASE_DIR,
  refuses to overwrite etc/condor_config, local/config.d/00-personal-condor or condor.sh, makes
  local/{log,spool,execute,config.d,passwords.d,tokens.d} and a LOCK directory under /tmp;
  `condor_install --make-personal-condor` (8.7.x) writes LOCAL_CONFIG_FILE = condor_config.local;
- `condor_master` returns at once and its daemons answer later; `-pidfile` records its pid;
  `condor_restart` and `condor_off -master` talk to the running master, and fail without one;
  a master that dies leaves its pid file and its last lines in MasterLog (a release built with
  `lib/standin/crashes` has one that dies 1.5 s after it starts);
- `condor_store_cred`: 9.0+ reads all of stdin with `-i -` and will not prompt without a
  terminal; 8.7.x's prompt reads one line from stdin; the file is written 0600, scrambled;
- `condor_status -any` and `condor_q` fail when the collector is unreachable; daemons that must
  authenticate with PASSWORD do not appear when the pool password file cannot be read;
- `condor_annex -check-setup` makes ~/.condor (0755) and its three logs, and performs the
  contract's local checks (knobs, secret key file ownership and mode, SEC_PASSWORD_FILE).

Not faithful: it never calls AWS (the CloudFormation part of -check-setup is skipped), and its
daemons listen and are reached on 127.0.0.1 only, whatever NETWORK_INTERFACE says, because tests
here must not send traffic beyond loopback.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import socketserver
import stat
import sys
import tempfile
import threading
import time
from pathlib import Path

RELEASE = Path(__file__).resolve().parents[2]
VERSION = "@VERSION@"
BINDINGS = "@BINDINGS@"
MODERN = tuple(int(part) for part in VERSION.split(".")) >= (9, 0, 0)
SCRAMBLE_KEY = b"condor-standin-scramble"


def fail(message: str, status: int = 1) -> None:
    print(message, file=sys.stderr)
    sys.exit(status)


def param() -> dict:
    sys.path.insert(0, BINDINGS)
    import htcondor2

    return htcondor2.param


def knob(name: str, default: str | None = None) -> str | None:
    return param().get(name, default)


def collector_port() -> int:
    host = knob("COLLECTOR_HOST", "") or ""
    port = host.rpartition(":")[2] if ":" in host else "9618"
    return int(port) if port.isdigit() else 9618


def master_pid_file() -> Path:
    return Path(knob("LOG") or "/nonexistent") / ".master_pid"


# --- installers -------------------------------------------------------------------------


def make_personal_from_tarball(args: list[str]) -> None:
    if os.geteuid() == 0:
        fail("make-personal-from-tarball: This script must not be run as root.")
    release = Path.cwd()
    if not (release / "sbin" / "condor_master").exists():
        fail(f"make-personal-from-tarball: {release} is not an unpacked HTCondor tarball (no sbin/condor_master)")
    for existing in ("etc/condor_config", "local/config.d/00-personal-condor", "condor.sh"):
        if (release / existing).exists():
            fail(f"make-personal-from-tarball: {existing} already exists, refusing to overwrite it.")
    local = release / "local"
    for sub in ("log", "spool", "execute", "config.d"):
        (local / sub).mkdir(parents=True, exist_ok=True)
    for sub in ("passwords.d", "tokens.d"):
        (local / sub).mkdir(mode=0o700, exist_ok=True)
    lock = tempfile.mkdtemp(prefix="condor-lock.", dir="/tmp")
    (release / "etc").mkdir(exist_ok=True)
    (release / "etc" / "condor_config").write_text(
        f"RELEASE_DIR = {release}\nLOCAL_DIR = $(RELEASE_DIR)/local\n"
        "LOCAL_CONFIG_DIR = $(LOCAL_DIR)/config.d\n#LOCAL_CONFIG_FILE = $(LOCAL_DIR)/condor_config.local\n"
    )
    (local / "config.d" / "00-personal-condor").write_text(
        "use ROLE : Personal\nCONDOR_HOST = 127.0.0.1\nNETWORK_INTERFACE = 127.0.0.1\n"
        f"LOCK = {lock}\nLOG = $(LOCAL_DIR)/log\nSPOOL = $(LOCAL_DIR)/spool\nEXECUTE = $(LOCAL_DIR)/execute\n"
    )
    write_condor_sh(release)
    print(f"Created a personal HTCondor in {release}")


def condor_install(args: list[str]) -> None:
    options = dict(arg.split("=", 1) for arg in args if arg.startswith("--") and "=" in arg)
    if "--make-personal-condor" not in args:
        fail("condor_install: only --make-personal-condor is supported by this stand-in")
    prefix = Path(options.get("--prefix", str(RELEASE)))
    local = Path(options.get("--local-dir", str(prefix / "local")))
    if prefix != RELEASE:
        for part in ("bin", "sbin", "lib"):
            shutil.copytree(RELEASE / part, prefix / part, symlinks=True, dirs_exist_ok=True)
    for sub in ("log", "spool", "execute"):
        (local / sub).mkdir(parents=True, exist_ok=True)
    (prefix / "etc").mkdir(exist_ok=True)
    (prefix / "etc" / "condor_config").write_text(
        f"RELEASE_DIR = {prefix}\nLOCAL_DIR = {local}\nLOCAL_CONFIG_FILE = $(LOCAL_DIR)/condor_config.local\n"
        "LOG = $(LOCAL_DIR)/log\nSPOOL = $(LOCAL_DIR)/spool\nEXECUTE = $(LOCAL_DIR)/execute\nLOCK = $(LOG)\n"
    )
    (local / "condor_config.local").write_text(
        "DAEMON_LIST = MASTER, COLLECTOR, NEGOTIATOR, STARTD, SCHEDD\nCONDOR_HOST = 127.0.0.1\n"
        "COLLECTOR_HOST = $(CONDOR_HOST):0\n"
    )
    write_condor_sh(prefix)
    print("Installation complete.")


def write_condor_sh(root: Path) -> None:
    (root / "condor.sh").write_text(
        f'export CONDOR_CONFIG="{root}/etc/condor_config"\nexport PATH="{root}/bin:{root}/sbin:$PATH"\n'
    )


# --- daemons ----------------------------------------------------------------------------


def password_readable() -> bool:
    methods = (knob("SEC_DAEMON_AUTHENTICATION_METHODS") or "").upper()
    if "PASSWORD" not in methods:
        return True
    password_file = knob("SEC_PASSWORD_FILE")
    try:
        return bool(password_file) and Path(password_file).read_bytes() != b""
    except OSError:
        return False


class Pool:
    """What the collector knows: which daemons have registered."""

    def __init__(self) -> None:
        self.types = ["DaemonMaster", "Collector"]

    def register(self) -> None:
        self.types = ["DaemonMaster", "Collector"]
        if password_readable():
            self.types += ["Negotiator", "Scheduler", "Machine", "Machine"]


def serve(pool: Pool, port: int) -> socketserver.ThreadingTCPServer:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            request = self.rfile.readline().strip()
            if request == b"status":
                self.wfile.write("".join(f"{kind}\n" for kind in pool.types).encode())
            elif request == b"queue":
                answer = "0 jobs; 0 completed, 0 removed, 0 idle, 0 running, 0 held, 0 suspended\n"
                self.wfile.write((answer if "Scheduler" in pool.types else "NO SCHEDD\n").encode())

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def log_line(message: str) -> None:
    with open(Path(knob("LOG") or "/tmp") / "MasterLog", "a") as master_log:
        master_log.write(f"{time.strftime('%m/%d/%y %H:%M:%S')} {message}\n")


def condor_master(args: list[str]) -> None:
    pid_file = args[args.index("-pidfile") + 1] if "-pidfile" in args else None
    if os.fork():
        return  # like the real one: the command returns before the daemons answer
    os.setsid()
    if os.fork():
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    own_pid_file = master_pid_file()
    own_pid_file.write_text(str(os.getpid()))
    if pid_file:
        Path(pid_file).write_text(str(os.getpid()))
    if (RELEASE / "lib" / "standin" / "crashes").exists():
        # A master that dies just after it started, as on a bad build or a full disk, leaving its
        # pid file behind and its last words in MasterLog.
        time.sleep(1.5)
        log_line("The COLLECTOR (pid 4242) died due to signal 11 (Segmentation fault)")
        log_line(f"**** condor_master (condor_MASTER) pid {os.getpid()} EXITING WITH STATUS 4")
        os._exit(4)
    pool = Pool()
    time.sleep(0.5)  # daemons take a moment to come up
    server = serve(pool, collector_port())
    pool.register()
    log_line(f"condor_master started; collector on port {collector_port()}; daemons: {pool.types}")
    restart = threading.Event()
    stop = threading.Event()
    signal.signal(signal.SIGHUP, lambda *_: restart.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.is_set():
        if restart.wait(0.2):
            restart.clear()
            sys.path.insert(0, BINDINGS)
            import htcondor2

            htcondor2.reload_config()
            server.shutdown()
            server.server_close()
            time.sleep(0.3)
            server = serve(pool, collector_port())
            pool.register()
            log_line(f"restarted; collector on port {collector_port()}; daemons: {pool.types}")
    server.shutdown()
    with contextlib.suppress(OSError):
        own_pid_file.unlink()
    log_line("condor_master exiting")
    os._exit(0)


def running_master() -> int:
    try:
        pid = int(master_pid_file().read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        fail("Can't find address for local master")
    return 0


def condor_restart(args: list[str]) -> None:
    os.kill(running_master(), signal.SIGHUP)
    print('Sent "Restart" command to local master')


def condor_off(args: list[str]) -> None:
    if "-master" not in args:
        fail("condor_off: this stand-in only supports -master")
    os.kill(running_master(), signal.SIGTERM)
    print('Sent "Kill-All-Daemons" command to local master')


def ask_collector(request: str) -> str:
    port = collector_port()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
            connection.sendall(request.encode() + b"\n")
            return connection.makefile().read()
    except OSError:
        fail(f"Error: communication error\nCEDAR:6001:Failed to connect to <127.0.0.1:{port}>")
    return ""


def condor_status(args: list[str]) -> None:
    print(ask_collector("status"), end="")


def condor_q(args: list[str]) -> None:
    answer = ask_collector("queue")
    if answer.startswith("NO SCHEDD"):
        fail("Error: Failed to fetch ads from schedd: authentication with the schedd failed")
    print(f"-- Schedd: {socket.gethostname()} : <127.0.0.1:{collector_port()}>\n{answer}", end="")


def condor_config_val(args: list[str]) -> None:
    names = [arg for arg in args if not arg.startswith("-")]
    status = 0
    for name in names:
        value = knob(name)
        if value is None:
            print(f"Not defined: {name}", file=sys.stderr)
            status = 1
        else:
            print(value)
    sys.exit(status)


# --- credentials and condor_annex --------------------------------------------------------


def condor_store_cred(args: list[str]) -> None:
    options: dict[str, str] = {}
    words = iter(args)
    for word in words:
        if word in ("-f", "-i", "-p"):
            options[word] = next(words, "")
    if "-f" not in options:
        fail("condor_store_cred: this stand-in only writes pool password files (-f)")
    if "-p" in options:
        password = options["-p"].encode()
    elif MODERN and options.get("-i") == "-":
        password = sys.stdin.buffer.read()
    elif MODERN:
        if not sys.stdin.isatty():
            fail("condor_store_cred: cannot prompt for a password: standard input is not a terminal")
        password = b""
    else:
        password = sys.stdin.buffer.readline().rstrip(b"\n")
    if not password:
        fail("condor_store_cred: empty password")
    scrambled = bytes(byte ^ SCRAMBLE_KEY[index % len(SCRAMBLE_KEY)] for index, byte in enumerate(password))
    descriptor = os.open(options["-f"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as password_file:
        password_file.write(scrambled)
    print("Operation succeeded.")


def unscramble(path: str) -> bytes:
    data = Path(path).read_bytes()
    return bytes(byte ^ SCRAMBLE_KEY[index % len(SCRAMBLE_KEY)] for index, byte in enumerate(data))


REQUIRED_ANNEX_KNOBS = [
    "ANNEX_DEFAULT_ACCESS_KEY_FILE",
    "ANNEX_DEFAULT_SECRET_KEY_FILE",
    "ANNEX_DEFAULT_S3_BUCKET",
    "ANNEX_DEFAULT_ODI_SECURITY_GROUP_IDS",
    "ANNEX_DEFAULT_ODI_LEASE_FUNCTION_ARN",
    "ANNEX_DEFAULT_SFR_LEASE_FUNCTION_ARN",
    "ANNEX_DEFAULT_ODI_INSTANCE_PROFILE_ARN",
]


def condor_annex(args: list[str]) -> None:
    condor_dir = Path.home() / ".condor"
    condor_dir.mkdir(mode=0o755, exist_ok=True)
    for log_name in ("AnnexLog", "AnnexGahpLog", "AnnexAuditLog"):
        with open(condor_dir / log_name, "a") as annex_log:
            annex_log.write(f"{time.ctime()} condor_annex {' '.join(args)}\n")
    if "-check-setup" not in args:
        fail("condor_annex: this stand-in only supports -check-setup")
    region_prefix = ""
    if "-aws-region" in args:
        if tuple(int(p) for p in VERSION.split(".")) < (8, 7, 8):
            fail("condor_annex: unknown option -aws-region")
        region = args[args.index("-aws-region") + 1]
        region_prefix = re.sub(r"[^A-Za-z0-9_./]", "_", region) + "."

    def annex_knob(name: str) -> str | None:
        return knob(f"{region_prefix}{name}") or knob(name)

    problems = [f"{name} is not set." for name in REQUIRED_ANNEX_KNOBS if not annex_knob(name)]
    if tuple(int(p) for p in VERSION.split(".")) >= (8, 7, 4) and not knob("COLLECTOR_HOST"):
        problems.append("COLLECTOR_HOST is not set.")
    secret_file = annex_knob("ANNEX_DEFAULT_SECRET_KEY_FILE")
    if secret_file:
        try:
            info = os.stat(secret_file)
            if info.st_uid != os.getuid() or info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                problems.append(f"Secret key file {secret_file} must be owned by you and accessible only by you.")
        except OSError as error:
            problems.append(f"Secret key file {secret_file} cannot be read: {error.strerror}.")
    password_file = knob("SEC_PASSWORD_FILE")
    if not password_file:
        problems.append("SEC_PASSWORD_FILE is not set.")
    else:
        try:
            Path(password_file).open("rb").close()
        except OSError as error:
            problems.append(f"Unable to open SEC_PASSWORD_FILE {password_file}: {error.strerror}.")
    if problems:
        fail("\n".join(problems))
    print("Checking for configuration bucket... (stand-in: AWS not consulted)")
    print("Your setup looks OK.")


TOOLS = {
    "make-personal-from-tarball": make_personal_from_tarball,
    "condor_install": condor_install,
    "condor_master": condor_master,
    "condor_restart": condor_restart,
    "condor_off": condor_off,
    "condor_status": condor_status,
    "condor_q": condor_q,
    "condor_config_val": condor_config_val,
    "condor_store_cred": condor_store_cred,
    "condor_annex": condor_annex,
}

if __name__ == "__main__":
    TOOLS[sys.argv[1]](sys.argv[2:])
