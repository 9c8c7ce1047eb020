"""A stand-in for the HTCondor tools our remote steps call, for tests where no real condor can run.

Each behaviour our scripts depend on, and what it was checked against ("run": seen on a real build
made here from HTCondor's sources, driven as our steps drive it; "read": read in HTCondor's sources
at that tag, for what no build here can show):

- configuration: read by the `htcondor` wheel's real parser (`htcondor2.param`) from CONDOR_CONFIG
  as `condor.sh` sets it, ~/.condor/user_config included. 8.7.x's `REQUIRE_LOCAL_CONFIG_FILE`
  (default true): every tool fails when `condor_config.local` is gone (read: V8_7_3).
- `make-personal-from-tarball` (9.0+): refuses root, takes the current directory as RELEASE_DIR,
  refuses to overwrite etc/condor_config, local/config.d/00-personal-condor or condor.sh, makes
  local/{log,spool,execute,config.d} and local/{passwords.d,tokens.d} (0700), prints nothing, and
  sets LOCK to a `mktemp -d /tmp/condor-lock-XXXXXX` directory (run: 24.0.23).
- `condor_install --make-personal-condor` (8.7.x): touches an empty `local/condor_config.local`,
  puts LOCAL_CONFIG_FILE, the personal settings and `LOCK = /tmp/condor-lock.<random>` in
  etc/condor_config (read: V8_7_3 `condor_configure`); the master makes the LOCK directory.
- `condor_master` returns before its daemons answer, and they answer within a second or two;
  `-pidfile` records its pid; it holds a POSIX write lock on `$(LOCK)/InstanceLock` (or
  MASTER_INSTANCE_LOCK) for its life, and a second master of the install exits for want of it
  (read: master.cpp lock_or_except at V8_7_3 and v25.0.13; the lock run: 24.0.23 and 25.0.13,
  tests/e2e/test_keeper.py); `condor_restart` and `condor_off -master` talk to the running master
  and fail without one (run: 24.0.23). A release built with `lib/standin/crashes` has a master that
  dies 1.5 s after it starts, leaving its pid file and its last words in MasterLog; one built with
  `lib/standin/never-matches` has a negotiator that matches no job.
- `condor_status -any` lists DaemonMaster, Collector, Negotiator, Scheduler, StartD, Accounting and
  one Machine ad (the partitionable slot1), each with its DaemonStartTime but the Collector's,
  which has none (run: 24.0.23; from 24.11 the Collector's has one, run: 25.0.13); `-af` prints
  the named attributes, `undefined` for a missing one.
  Not here: a real 10.0.9 lists two static slots and no StartD ad; this lists 24.0's layout for
  every version (our steps require neither).
  Daemons that must authenticate with PASSWORD do not appear while the pool password file cannot
  be read. After `condor_restart` the collector still answers with the ads of before the restart:
  for OLD_DAEMONS_LINGER seconds the old daemons still answer and run jobs, then for
  SCHEDD_AWAY seconds the schedd does not answer ("Can't find address of local schedd"); then
  fresh ads with a new DaemonStartTime, and the jobs they run record a new DaemonGeneration in the
  history (reported from a real 24.0.23 in issue 11,
  where the window is shorter and varies; in this session's real run the wait for fresh daemons
  after a restart ended within 10 s).
- 24.11+ (`use feature:HPC_ANNEX`, run: 25.0.13): the AP collector answers
  `condor_status -pool <ANNEX_COLLECTOR> -any` with its own Collector ad (no DaemonStartTime) and
  the schedd's Scheduler ad (and a Submitter ad once a job was submitted, not here); ANNEX_COLLECTOR
  is `<host>:<SHARED_PORT_PORT>?sock=ap_collector` and SHARED_PORT_PORT defaults to COLLECTOR_PORT
  (the wheel's parser gives both). When the daemons start, the collector makes the pool's signing
  key (SEC_PASSWORD_FILE, `passwords.d/POOL`) if there is none, and the AP collector makes `AP`
  beside it, both 0600. With the pool key our step stored, the guide's job ran in ~13 s and a
  rotation (store + restart) ran the next job on fresh daemons in ~14 s. The schedd then has two
  collectors and finds the negotiator through one of them at random unless `HAD_USE_PRIMARY`
  (read: v25.0.13 `daemon_list.cpp`); when it asks the AP collector, which has no negotiator ad,
  SchedLog says "Can't find address for negotiator" and the reschedule is lost, so the job waits
  for the next negotiation cycle (run: 25.0.13, in about half the runs). Here the draw always goes
  to the AP collector, so that a test sees it; MasterLog gets the line.
- jobs: `condor_submit` prints "N job(s) submitted to cluster C."; a job stays idle until the
  negotiator matches it (at once on `condor_reschedule`, else every NEGOTIATOR_INTERVAL seconds),
  runs its executable, and then leaves the queue for `condor_history` with JobStatus 4 and its
  ExitCode (run: 24.0.23, where /bin/true completed about 14 s after condor_reschedule, here at
  once). `condor_history CLUSTER -limit N -af ATTRS` (run: 24.0.23); `condor_q -better-analyze` and
  `condor_rm` (read: v24.0.23; their words here are shorter). Not here: the Submitter ad and the
  per-user Accounting ad a real pool lists once a job was submitted.
- `condor_store_cred -c add -f F`: prints `Enter password: ` on stdout, reads stdin up to a newline
  (at most 255 bytes). If stdin ends first: up to 10.7 it pads with 0xFF up to 255 bytes (run:
  10.0.9; read: V8_7_3 `read_from_keyboard`), from 10.8 it stops (run: 24.0.23). `-i -` is
  ignored with `-f` up to 10.7 (run: 10.0.9: `printf pw | ... -i -` stored 255 bytes) and from
  10.8 reads all of stdin, newline and all (run: 24.0.23, 25.0.13). F is written 0600: the password
  XORed with DE AD BE EF, no trailing NUL (run: 24.0.23, 25.0.13; read: V8_7_3).
- client tools that talk to a daemon (condor_q, condor_status, condor_submit, condor_rm,
  condor_reschedule, condor_off, condor_restart) run as a non-root user add `host FS unknown` to
  ~/.condor/known_hosts (0644), making ~/.condor (0755) when it is missing (run: 24.0.23, condor_q).
- `condor_annex` makes ~/.condor (0755) when missing and writes AnnexLog, AnnexAuditLog,
  AnnexCommand.state and known_hosts there on every run (run: 24.0.23; 25.0.13 writes no
  known_hosts, having no daemon to ask). From 24.11 it is `libexec/condor_annex`, not on PATH, and
  `htcondor annex setup|checksetup [--aws-region R]` runs it with `[-aws-region R] -setup|-check-setup`
  and exits 0 whatever it said; another subcommand is a usage error, exit 2 (run: 25.0.13; read:
  v25.0.13 `htcondor_cli/annex.py`). Without `-aws-region` the region is ANNEX_DEFAULT_AWS_REGION
  when set (read: V8_7_8, v24.0.23, v25.0.13 `annex.cpp`); before 8.7.8 the stacks are asked
  for at ANNEX_DEFAULT_CF_URL (read: V8_7_3 `annex-setup.cpp`, `param_info.in`). `-check-setup`: prints
  `Will check setup in region 'R'.` (from 8.9.10), checks the knobs ("Your setup is incomplete: ...
  is unset."), the secret key file's owner and mode ("Secret key file must be accessible only by
  owner. ...", run: 24.0.23) and an openable SEC_PASSWORD_FILE, and exits 1 on any of those
  (read: v24.0.23; the same words, run: 25.0.13); then (from 8.7.4 up to 24.11; 25.0.13 has no
  probe, run) prints `Checking security configuration... ` on stderr and
  asks the collector whether it may advertise: `OK.`, or the "We were not authorized to advertise
  to the collector." warning when the pool's PASSWORD setup is broken (the file unreadable, or not
  the password the daemons started with), and goes on (run: 24.0.23, both). Then one "Checking
  for <stack>..." line a stack and "Your setup looks OK.", exit 0 even when a stack check fails
  (run: 24.0.23, for a failed call; read: v24.0.23 `CheckForStack.cpp` for a missing stack). The
  real one block-buffers stdout, so through a pipe its stderr lines come first; ours interleave.

- a master killed alone (SIGKILL) leaves its daemons running, reparented; the shared port daemon
  among them keeps the collector's port, so a new master's daemons cannot start beside them and no
  job runs (run: 25.0.13, the guide's job had not completed after 300 s; 24.0.23 leaves its daemons
  running the same way). Here `condor_shared_port`,
  a process of its own the master starts, stands for them: while one from before is alive, a new
  master logs the port in use and its daemons never answer. A master stopped by condor_off stops it.
  Every process of the user killed, and /tmp's LOCK directory gone, as after a reboot: a new master
  makes LOCK again and comes up; the guide's job completed 21 s after it started (run: 25.0.13,
  24.0.23).

- `condor_config_val -subsystem ANNEX <knob>` reads the configuration as condor_annex does, its
  `ANNEX.` settings included; `condor_status -pool <host:port> -collector -af Name` asks that
  collector for its own ad (run: 24.0.23, 25.0.13, the start step's check of the address
  condor_annex dials).

Not faithful: AWS. The CloudFormation part of -check-setup reads a JSON file the tests write
(AWS_STATE: which stacks exist in which region, from when the access key is known and from when its
policy is, and, when a test lists them, which access keys exist: any other is refused as unknown);
`condor_annex -status -classads` lists the annexes it names per region (the ad's form as the real
one prints it), and `-annex-name A -duration H` ends A at once, where on AWS its lease function
ends it when the annex's rule next fires (tests/e2e/test_annex.py runs the real ones against moto);
the words for an unknown key, and for a known key whose policy IAM has not spread yet
(AccessDenied, "... is not authorized to perform: cloudformation:DescribeStacks ...", the wording of
AWS's documented AccessDenied message), quote AWS's error code and message as `CheckForStack.cpp`
formats a failed call, but no real AWS answer was seen here. Its daemons listen on 127.0.0.1 only,
whatever NETWORK_INTERFACE says, because tests here must not send traffic beyond loopback, and they
speak a line protocol of their own, not CEDAR.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import socketserver
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

RELEASE = Path(__file__).resolve().parents[2]
VERSION = "@VERSION@"
BINDINGS = "@BINDINGS@"
ARGV_LOG = "@ARGV_LOG@"
AWS_STATE = "@AWS_STATE@"
PARTS = tuple(int(part) for part in VERSION.split("."))
MODERN = PARTS >= (9, 0, 0)
HPC_ANNEX_LINE = PARTS >= (24, 11, 0)
SCRAMBLE_KEY = bytes([0xDE, 0xAD, 0xBE, 0xEF])
MAX_PASSWORD_LENGTH = 255
OLD_DAEMONS_LINGER = 2.5
SCHEDD_AWAY = 1.5
NEGOTIATOR_INTERVAL = 20.0


def fail(message: str, status: int = 1) -> None:
    print(message, file=sys.stderr)
    sys.exit(status)


def param() -> dict:
    sys.path.insert(0, BINDINGS)
    import htcondor2

    local = htcondor2.param.get("LOCAL_CONFIG_FILE")
    required = str(htcondor2.param.get("REQUIRE_LOCAL_CONFIG_FILE", True)).lower() == "true"
    if local and required and not Path(local).is_file():
        fail(f"ERROR: Can't read config source {local}\nConfiguration Error Line 0 while reading config source")
    return htcondor2.param


def knob(name: str, default: str | None = None) -> str | None:
    return param().get(name, default)


def port_of(address: str) -> int:
    """The port of `host:port` or `host:port?sock=name`; 9618 when none is given."""
    port = address.split("?")[0].rpartition(":")[2] if ":" in address else "9618"
    return int(port) if port.isdigit() else 9618


def collector_port() -> int:
    return port_of(knob("COLLECTOR_HOST", "") or "")


def hpc_annex() -> bool:
    return str(knob("HPC_ANNEX_ENABLED", False)).lower() == "true"


def master_pid_file() -> Path:
    return Path(knob("LOG") or "/nonexistent") / ".master_pid"


def scramble(data: bytes) -> bytes:
    return bytes(byte ^ SCRAMBLE_KEY[index % len(SCRAMBLE_KEY)] for index, byte in enumerate(data))


def note_known_host() -> None:
    """What a non-root client does once it has talked to a daemon: ~/.condor made 0755 if missing."""
    if os.geteuid() == 0:
        return
    condor_dir = Path.home() / ".condor"
    condor_dir.mkdir(mode=0o755, exist_ok=True)
    descriptor = os.open(condor_dir / "known_hosts", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    with os.fdopen(descriptor, "a") as known_hosts:
        known_hosts.write(f"{socket.gethostname()} FS unknown\n")


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
    lock = tempfile.mkdtemp(prefix="condor-lock-", dir="/tmp")
    (release / "etc").mkdir(exist_ok=True)
    (release / "etc" / "condor_config").write_text(
        f"RELEASE_DIR = {release}\nLOCAL_DIR = $(RELEASE_DIR)/local\n"
        "LOCAL_CONFIG_DIR = $(LOCAL_DIR)/config.d\n#LOCAL_CONFIG_FILE = $(LOCAL_DIR)/condor_config.local\n"
        "LIBEXEC = $(RELEASE_DIR)/libexec\n"
    )
    (local / "config.d" / "00-personal-condor").write_text(
        "use ROLE : Personal\nCONDOR_HOST = 127.0.0.1\nNETWORK_INTERFACE = 127.0.0.1\n"
        f"LOCK = {lock}\nLOG = $(LOCAL_DIR)/log\nSPOOL = $(LOCAL_DIR)/spool\nEXECUTE = $(LOCAL_DIR)/execute\n"
    )
    write_condor_sh(release)


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
    (local / "condor_config.local").touch()
    (prefix / "etc").mkdir(exist_ok=True)
    (prefix / "etc" / "condor_config").write_text(
        f"RELEASE_DIR = {prefix}\nLOCAL_DIR = {local}\nLOCAL_CONFIG_FILE = $(LOCAL_DIR)/condor_config.local\n"
        "REQUIRE_LOCAL_CONFIG_FILE = true\n"
        "LOG = $(LOCAL_DIR)/log\nSPOOL = $(LOCAL_DIR)/spool\nEXECUTE = $(LOCAL_DIR)/execute\n"
        "DAEMON_LIST = MASTER, COLLECTOR, NEGOTIATOR, STARTD, SCHEDD\nCONDOR_HOST = 127.0.0.1\n"
        f"COLLECTOR_HOST = $(CONDOR_HOST):0\nLOCK = /tmp/condor-lock.{os.urandom(8).hex()}\n"
    )
    write_condor_sh(prefix)
    print("Installation complete.")


def write_condor_sh(root: Path) -> None:
    python_path = f'export PYTHONPATH="{root}/lib/python3${{PYTHONPATH:+:$PYTHONPATH}}"\n' if HPC_ANNEX_LINE else ""
    (root / "condor.sh").write_text(
        f'export CONDOR_CONFIG="{root}/etc/condor_config"\nexport PATH="{root}/bin:{root}/sbin:$PATH"\n' + python_path
    )


# --- daemons ----------------------------------------------------------------------------


def pool_password() -> bytes | None:
    """The pool password the daemons can read, or None where PASSWORD cannot work. From 24.11 the
    collector makes the pool's signing key (0600) when there is none."""
    password_file = knob("SEC_PASSWORD_FILE")
    if HPC_ANNEX_LINE and password_file and not Path(password_file).exists():
        descriptor = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(descriptor, scramble(os.urandom(32).hex().encode()))
        os.close(descriptor)
    try:
        data = Path(password_file).read_bytes() if password_file else b""
    except OSError:
        return None
    return data or None


def needs_password() -> bool:
    return "PASSWORD" in (knob("SEC_DAEMON_AUTHENTICATION_METHODS") or "").upper()


def make_ap_signing_key() -> None:
    """The AP collector makes the `AP` token signing key beside the pool's when there is none."""
    directory = Path(knob("SEC_PASSWORD_DIRECTORY") or Path(knob("SEC_PASSWORD_FILE") or "/nonexistent").parent)
    with contextlib.suppress(FileExistsError):
        descriptor = os.open(directory / "AP", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(descriptor, scramble(os.urandom(32).hex().encode()))
        os.close(descriptor)


class Pool:
    """What the collector, schedd and negotiator of one master know."""

    def __init__(self) -> None:
        self.ads: list[tuple[str, int | None]] = []
        self.password: bytes | None = None
        self.schedd_up = False
        self.jobs: dict[int, dict] = {}
        self.generation = 0
        self.next_cluster = 1
        self.lock = threading.Lock()
        self.negotiate = threading.Event()

    def register(self) -> None:
        """The daemons (re)start: ads with a new DaemonStartTime, as far as authentication lets them."""
        started = int(time.time())
        self.generation += 1
        self.password = pool_password()
        types = ["DaemonMaster", "Collector"]
        if self.password is not None or not needs_password():
            types += ["Negotiator", "Accounting", "Scheduler", "StartD", "Machine"]
        # The collector's own ad has no DaemonStartTime before 24.11.
        self.ads = [(kind, None if kind == "Collector" and not HPC_ANNEX_LINE else started) for kind in types]
        self.ap_collector = hpc_annex()
        self.schedd_asks_primary = str(knob("SCHEDD.HAD_USE_PRIMARY", knob("HAD_USE_PRIMARY", False))).lower() == "true"
        if self.ap_collector:
            make_ap_signing_key()
        self.schedd_up = "Scheduler" in types

    def history_file(self) -> Path:
        return Path(knob("SPOOL") or "/nonexistent") / "history"

    def run_idle_jobs(self) -> None:
        if not any(kind == "Negotiator" for kind, _ in self.ads) or (RELEASE / "lib/standin/never-matches").exists():
            return
        with self.lock:
            idle = [job for job in self.jobs.values() if job["JobStatus"] == 1]
        for job in idle:
            job.update(JobStatus=2, DaemonGeneration=self.generation)
            completed = subprocess.run([job["Cmd"]], cwd=job["Iwd"], check=False)
            job.update(JobStatus=4, ExitCode=completed.returncode, CompletionDate=int(time.time()))
            with self.lock, open(self.history_file(), "a") as history:
                history.write(json.dumps(job) + "\n")
                del self.jobs[job["ClusterId"]]

    def answer(self, request: str) -> str:
        word, _, rest = request.partition(" ")
        if word == "status":
            return "".join(f"{kind} {started or 'undefined'}\n" for kind, started in self.ads)
        if word == "apstatus":
            if not self.ap_collector:
                return "NO AP COLLECTOR\n"
            # The AP collector's own ad has no DaemonStartTime; the schedd reports to it too.
            schedd = "".join(f"{kind} {started}\n" for kind, started in self.ads if kind == "Scheduler")
            return "Collector undefined\n" + schedd
        if word == "secquery":
            return "OK\n" if self.password is not None and self.password == pool_password() else "DENIED\n"
        if not self.schedd_up:
            return "NO SCHEDD\n"
        if word == "queue":
            with self.lock:
                return "".join(json.dumps(job) + "\n" for job in self.jobs.values())
        if word == "submit":
            job = json.loads(rest)
            with self.lock:
                cluster = self.next_cluster
                self.next_cluster += 1
                self.jobs[cluster] = {**job, "ClusterId": cluster, "ProcId": 0, "JobStatus": 1}
            return f"{cluster}\n"
        if word == "reschedule":
            if self.ap_collector and not self.schedd_asks_primary:
                log_line("schedd: Can't find address for negotiator (asked the AP collector)")
            else:
                self.negotiate.set()
            return "OK\n"
        if word == "rm":
            with self.lock:
                return "OK\n" if self.jobs.pop(int(rest), None) else "NO SUCH JOB\n"
        return "UNKNOWN\n"


def serve(pool: Pool, port: int) -> socketserver.ThreadingTCPServer:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.wfile.write(pool.answer(self.rfile.readline().decode().strip()).encode())

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def log_line(message: str) -> None:
    with open(Path(knob("LOG") or "/tmp") / "MasterLog", "a") as master_log:
        master_log.write(f"{time.strftime('%m/%d/%y %H:%M:%S')} {message}\n")


def negotiator(pool: Pool) -> None:
    while True:
        pool.negotiate.wait(NEGOTIATOR_INTERVAL)
        pool.negotiate.clear()
        pool.run_idle_jobs()


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
    Path(knob("LOCK") or knob("LOG") or "/nonexistent").mkdir(parents=True, exist_ok=True)
    # Held for the master's life, as lock_or_except holds it (a POSIX write lock); a second master fails.
    instance_lock = open(knob("MASTER_INSTANCE_LOCK") or f"{knob('LOCK')}/InstanceLock", "a")  # noqa: SIM115
    try:
        fcntl.lockf(instance_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        log_line(f'ERROR "Can\'t get lock on "{instance_lock.name}"" at line 1606 in file master.cpp')
        os._exit(4)
    if (RELEASE / "lib" / "standin" / "crashes").exists():
        # A master that dies just after it started, as on a bad build or a full disk, leaving its
        # pid file behind and its last words in MasterLog.
        time.sleep(1.5)
        log_line("The COLLECTOR (pid 4242) died due to signal 11 (Segmentation fault)")
        log_line(f"**** condor_master (condor_MASTER) pid {os.getpid()} EXITING WITH STATUS 4")
        os._exit(4)
    shared_port = start_shared_port()
    if shared_port is None:
        log_line("ERROR: SharedPortServer: failed to bind the collector's port: a daemon of a master before holds it")
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        while True:
            time.sleep(1)
    pool = Pool()
    time.sleep(0.5)  # daemons take a moment to come up
    server = serve(pool, collector_port())
    pool.register()
    threading.Thread(target=negotiator, args=(pool,), daemon=True).start()
    log_line(f"condor_master started; collector on port {collector_port()}; daemons: {pool.ads}")
    restart = threading.Event()
    stop = threading.Event()
    signal.signal(signal.SIGHUP, lambda *_: restart.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.is_set():
        if restart.wait(0.2):
            restart.clear()
            # The collector still holds the old daemons' ads while they restart; the schedd is down.
            time.sleep(OLD_DAEMONS_LINGER)
            pool.schedd_up = False
            time.sleep(SCHEDD_AWAY)
            sys.path.insert(0, BINDINGS)
            import htcondor2

            htcondor2.reload_config()
            server.shutdown()
            server.server_close()
            server = serve(pool, collector_port())
            pool.register()
            log_line(f"restarted; collector on port {collector_port()}; daemons: {pool.ads}")
    server.shutdown()
    shared_port.terminate()
    with contextlib.suppress(OSError):
        own_pid_file.unlink()
    log_line("condor_master exiting")
    os._exit(0)


def shared_port_lock() -> Path:
    return Path(knob("LOG") or "/nonexistent") / ".standin-shared-port.lock"


def start_shared_port() -> subprocess.Popen | None:
    """The shared port daemon, holding the port (a lock here) for as long as it lives; None when one
    from before still holds it."""
    with open(shared_port_lock(), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        fcntl.flock(lock, fcntl.LOCK_UN)
    daemon = subprocess.Popen([str(RELEASE / "sbin" / "condor_shared_port")], stdout=subprocess.PIPE)
    daemon.stdout.readline()  # it holds the lock
    return daemon


def condor_shared_port(args: list[str]) -> None:
    with open(shared_port_lock(), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        print("holding", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        while True:
            time.sleep(1)


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
    note_known_host()
    print('Sent "Restart" command to local master')


def condor_off(args: list[str]) -> None:
    if "-master" not in args:
        fail("condor_off: this stand-in only supports -master")
    os.kill(running_master(), signal.SIGTERM)
    note_known_host()
    print('Sent "Kill-All-Daemons" command to local master')


def ask(request: str, port: int | None = None) -> str:
    port = port or collector_port()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
            connection.sendall(request.encode() + b"\n")
            answer = connection.makefile().read()
    except OSError:
        fail(f"Error: communication error\nCEDAR:6001:Failed to connect to <127.0.0.1:{port}>")
    note_known_host()
    return answer


def ask_schedd(request: str) -> str:
    answer = ask(request)
    if answer.startswith("NO SCHEDD"):
        fail("Error: Can't find address of local schedd")
    return answer


def autoformat(args: list[str]) -> list[str]:
    """The attribute names after -af, up to the next option."""
    if "-af" not in args:
        return []
    names = []
    for word in args[args.index("-af") + 1 :]:
        if word.startswith("-"):
            break
        names.append(word)
    return names


def condor_status(args: list[str]) -> None:
    names = autoformat(args) or ["MyType"]
    if "-pool" in args and "?sock=ap_collector" not in args[args.index("-pool") + 1]:
        # The pool's collector by its address (the port; the daemons listen on 127.0.0.1 alone).
        answer = ask("status", port_of(args[args.index("-pool") + 1]))
    elif "-pool" in args:
        pool = args[args.index("-pool") + 1]
        answer = ask("apstatus", port_of(pool))
        if answer.startswith("NO AP COLLECTOR"):
            fail(f"Error: communication error\nSECMAN:2003:TCP connection to collector {pool} failed.")
    else:
        answer = ask("status")
    for line in answer.splitlines():
        kind, started = line.split()
        if "-collector" in args and kind != "Collector":
            continue
        ad = {"MyType": kind, "DaemonStartTime": started, "Name": f"{kind} on {socket.gethostname()}"}
        print(" ".join(ad.get(name, "undefined") for name in names))


def condor_q(args: list[str]) -> None:
    jobs = [json.loads(line) for line in ask_schedd("queue").splitlines()]
    if "-better-analyze" in args:
        cluster = int(next(arg for arg in args if arg.isdigit()))
        job = next((job for job in jobs if job["ClusterId"] == cluster), None)
        if job is None:
            fail(f"-- Schedd: {socket.gethostname()} : <127.0.0.1:{collector_port()}>\nNo job {cluster} in the queue")
        print(
            f"-- Schedd: {socket.gethostname()} : <127.0.0.1:{collector_port()}>\n"
            f'The Requirements expression for job {cluster}.000 is\n\n    (TARGET.Arch == "X86_64")\n\n'
            f"{cluster}.000:  Run analysis summary ignoring user priority.  Of 0 machines,\n"
            "      0 are rejected by your job's requirements\n      0 are available to run your job\n"
            "WARNING:  Be advised:\n   No resources matched request's constraints"
        )
        return
    idle = sum(job["JobStatus"] == 1 for job in jobs)
    running = sum(job["JobStatus"] == 2 for job in jobs)
    print(
        f"-- Schedd: {socket.gethostname()} : <127.0.0.1:{collector_port()}>\n"
        f"Total for query: {len(jobs)} jobs; 0 completed, 0 removed, {idle} idle, {running} running, 0 held, "
        "0 suspended"
    )


def condor_submit(args: list[str]) -> None:
    submit_file = Path(next(arg for arg in args if not arg.startswith("-")))
    commands = {}
    for line in submit_file.read_text().splitlines():
        name, equals, value = line.partition("=")
        if equals:
            commands[name.strip().lower()] = value.strip()
    job = {"Cmd": commands["executable"], "Iwd": str(Path.cwd()), "Owner": os.environ.get("USER", "")}
    print("Submitting job(s).")
    cluster = ask_schedd("submit " + json.dumps(job)).strip()
    print(f"1 job(s) submitted to cluster {cluster}.")


def condor_reschedule(args: list[str]) -> None:
    ask_schedd("reschedule")
    print("Sent reschedule command to local schedd")


def condor_rm(args: list[str]) -> None:
    cluster = next(arg for arg in args if arg.isdigit())
    if ask_schedd(f"rm {cluster}").startswith("NO SUCH JOB"):
        fail(f"Couldn't find/remove all jobs in cluster {cluster}")
    print(f"All jobs in cluster {cluster} have been marked for removal")


def condor_history(args: list[str]) -> None:
    names = autoformat(args)
    limit = int(args[args.index("-limit") + 1]) if "-limit" in args else None
    options_with_values = {"-limit"}
    positional = [
        arg
        for index, arg in enumerate(args)
        if not arg.startswith("-") and arg not in names and (index == 0 or args[index - 1] not in options_with_values)
    ]
    history = Path(knob("SPOOL") or "/nonexistent") / "history"
    jobs = [json.loads(line) for line in history.read_text().splitlines()] if history.exists() else []
    if positional:
        jobs = [job for job in jobs if str(job["ClusterId"]) == positional[0].split(".")[0]]
    for job in list(reversed(jobs))[:limit]:
        print(" ".join(str(job.get(name, "undefined")) for name in names or ["ClusterId", "JobStatus"]))


def condor_config_val(args: list[str]) -> None:
    subsystem = args[args.index("-subsystem") + 1] if "-subsystem" in args else None
    names = [arg for index, arg in enumerate(args) if not arg.startswith("-") and args[index - 1] != "-subsystem"]
    if subsystem:
        param()
        import htcondor2

        htcondor2.set_subsystem(subsystem, htcondor2.SubsystemType.Daemon)
        htcondor2.reload_config()
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


def prompt_for_password() -> bytes:
    """`get_password` / `read_from_keyboard`: to a newline, at most 255 bytes; past the end of input
    up to 10.7 it stores getchar()'s EOF as 0xFF bytes up to the limit, from 10.8 it stops there."""
    sys.stdout.write("Enter password: ")
    sys.stdout.flush()
    password = bytearray()
    while len(password) < MAX_PASSWORD_LENGTH:
        char = sys.stdin.buffer.read(1)
        if char == b"\n" or (not char and PARTS >= (10, 8, 0)):
            break
        password += char or b"\xff"
    sys.stdout.write("\n")
    return bytes(password)


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
    elif options.get("-i") == "-" and PARTS >= (10, 8, 0):
        password = sys.stdin.buffer.read()
    else:
        password = prompt_for_password()
    password = password.split(b"\0")[0]  # written as a C string
    descriptor = os.open(options["-f"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as password_file:
        password_file.write(scramble(password))


REQUIRED_ANNEX_KNOBS = [
    "ANNEX_DEFAULT_ACCESS_KEY_FILE",
    "ANNEX_DEFAULT_SECRET_KEY_FILE",
    "ANNEX_DEFAULT_S3_BUCKET",
    "ANNEX_DEFAULT_ODI_SECURITY_GROUP_IDS",
    "ANNEX_DEFAULT_ODI_LEASE_FUNCTION_ARN",
    "ANNEX_DEFAULT_SFR_LEASE_FUNCTION_ARN",
    "ANNEX_DEFAULT_ODI_INSTANCE_PROFILE_ARN",
]
STACKS = [
    ("HTCondorAnnex-ConfigurationBucket", "configuration bucket"),
    ("HTCondorAnnex-LambdaFunctions", "Lambda functions"),
    ("HTCondorAnnex-InstanceProfile", "instance profile"),
    ("HTCondorAnnex-SecurityGroup", "security group"),
]


def security_probe() -> None:
    print("Checking security configuration... ", end="", file=sys.stderr, flush=True)
    if ask("secquery").strip() == "OK":
        print("OK.", file=sys.stderr)
        return
    print(
        "We were not authorized to advertise to the collector.  Run 'condor_ping -verbose -type COLLECTOR "
        "UPDATE_STARTD_AD' for more information.  Although it is possible to configure PASSWORD -based "
        "security in a host-specific way, it would be unusual to do so, so we recommend you investigate this "
        "problem.  We will continue to check your set-up.\n",
        file=sys.stderr,
    )


def check_stacks(access_key_file: str, region: str) -> None:
    state = json.loads(Path(AWS_STATE).read_text())
    access_key = Path(access_key_file).read_text().strip()
    for name, description in STACKS:
        print(f"Checking for {description}...", end="", flush=True)
        deleted = "access_keys" in state and access_key not in state["access_keys"]
        if time.time() < state.get("key_known_from", 0) or not access_key or deleted:
            print(
                " FAILED to check status of stack: 'E_HTTP_RESPONSE_NOT_200 (403)' (1): '<ErrorResponse><Error>"
                "<Type>Sender</Type><Code>InvalidClientTokenId</Code><Message>The security token included in "
                "the request is invalid.</Message></Error></ErrorResponse>'.",
                file=sys.stderr,
            )
            return
        if time.time() < state.get("policy_known_from", 0):
            print(
                " FAILED to check status of stack: 'E_HTTP_RESPONSE_NOT_200 (403)' (1): '<ErrorResponse><Error>"
                "<Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/annex "
                "is not authorized to perform: cloudformation:DescribeStacks on resource: "
                f"arn:aws:cloudformation:{region}:123456789012:stack/{name}/* because no identity-based policy "
                "allows the cloudformation:DescribeStacks action</Message></Error></ErrorResponse>'.",
                file=sys.stderr,
            )
            return
        if name not in state.get("stacks", {}).get(region, []):
            print(" missing.")
            print(
                f"Missing {description}.  Please log into your AWS account and delete each CloudFormation stack "
                "whose name starts with 'HTCondorAnnex-', then re-run 'condor_annex -setup'.",
                file=sys.stderr,
            )
            return
        print(" OK.")
    print("Your setup looks OK.")


def condor_annex(args: list[str]) -> None:
    # It reads its configuration as the ANNEX subsystem, so `ANNEX.<knob>` settings are its alone
    # (read: V8_7_3, v24.0.23 and v25.0.13 `annex.cpp`, set_mySubSystem("ANNEX", ...)).
    param()
    import htcondor2

    htcondor2.set_subsystem("ANNEX", htcondor2.SubsystemType.Daemon)
    htcondor2.reload_config()
    condor_dir = Path.home() / ".condor"
    condor_dir.mkdir(mode=0o755, exist_ok=True)
    logs = ["AnnexLog", "AnnexAuditLog", "AnnexCommand.state"] + ([] if HPC_ANNEX_LINE else ["known_hosts"])
    for log_name in logs:
        with open(condor_dir / log_name, "a") as annex_log:
            annex_log.write(f"{time.ctime()} condor_annex {' '.join(args)}\n")
    if "-status" in args:
        annex_status(args)
        return
    if "-duration" in args:
        end_lease(args)
        return
    if "-check-setup" not in args:
        fail("condor_annex: this stand-in only supports -check-setup, -status and -duration")
    region_prefix = ""
    region = "us-east-1"
    if "-aws-region" in args and PARTS < (8, 7, 8):
        fail("condor_annex: unknown option -aws-region")
    chosen = args[args.index("-aws-region") + 1] if "-aws-region" in args else knob("ANNEX_DEFAULT_AWS_REGION")
    if chosen and PARTS >= (8, 7, 8):
        region = chosen
        region_prefix = re.sub(r"[^A-Za-z0-9_./]", "_", region) + "."
    elif PARTS < (8, 7, 8):
        # CloudFormation is asked at ANNEX_DEFAULT_CF_URL, whose default is us-east-1's.
        cloudformation = knob("ANNEX_DEFAULT_CF_URL") or ""
        endpoint = re.fullmatch(r"https://cloudformation\.([a-z0-9-]+)\.amazonaws\.com/?", cloudformation)
        region = endpoint.group(1) if endpoint else region
    if PARTS >= (8, 9, 10):
        print(f"Will check setup in region '{region}'.")

    def annex_knob(name: str) -> str | None:
        return knob(f"{region_prefix}{name}") or knob(name)

    names = REQUIRED_ANNEX_KNOBS + (["COLLECTOR_HOST"] if PARTS >= (8, 7, 4) else []) + ["SEC_PASSWORD_FILE"]
    unset = [name for name in names if not annex_knob(name)]
    if unset:
        fail("Your setup is incomplete:\n" + "\n".join(f"\t{name} is unset." for name in unset))
    secret_file = annex_knob("ANNEX_DEFAULT_SECRET_KEY_FILE") or ""
    info = os.stat(secret_file)
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO) or info.st_uid != os.getuid():
        fail(
            "Secret key file must be accessible only by owner.  Please verify that your user owns the file and "
            "that the file permissons are restricted to the owner."
        )
    password_file = knob("SEC_PASSWORD_FILE") or ""
    try:
        Path(password_file).open("rb").close()
    except OSError as error:
        fail(f"Unable to open SEC_PASSWORD_FILE '{password_file}': {error.strerror} ({error.errno}).")
    if (8, 7, 4) <= PARTS < (24, 11, 0):
        security_probe()
    check_stacks(annex_knob("ANNEX_DEFAULT_ACCESS_KEY_FILE") or "", region)


def annexes_in(region: str) -> dict[str, int]:
    """The annexes AWS_STATE says run in a region, each with its instances not yet terminated."""
    return json.loads(Path(AWS_STATE).read_text()).get("annexes", {}).get(region, {})


def option(args: list[str], name: str, default: str | None = None) -> str | None:
    return args[args.index(name) + 1] if name in args else default


def annex_status(args: list[str]) -> None:
    """`-status -classads`: an ad an annex with TotalInstances and NumInstances<State> (read:
    v24.0.23 `StatusReply.cpp`; run: 24.0.23 and 25.0.13 against moto, tests/e2e/test_annex.py)."""
    annexes = annexes_in(option(args, "-aws-region", knob("ANNEX_DEFAULT_AWS_REGION") or "us-east-1"))
    if not annexes:
        print("Found no instances in any annex.")
        return
    for name, count in annexes.items():
        print(f'AnnexID = "{name}"\nMyType = "Annex"\nNumInstancesRunning = {count}\nTotalInstances = {count}\n')


def end_lease(args: list[str]) -> None:
    """`-annex-name A -duration H` sets A's lease to end H hours from now; here its lease function
    ends the annex at once (on AWS, within the 5 minutes of its rule's schedule)."""
    state = json.loads(Path(AWS_STATE).read_text())
    region = option(args, "-aws-region", knob("ANNEX_DEFAULT_AWS_REGION") or "us-east-1")
    state.get("annexes", {}).get(region, {}).pop(option(args, "-annex-name"), None)
    Path(AWS_STATE).write_text(json.dumps(state))


def htcondor(args: list[str]) -> None:
    """`htcondor annex setup|checksetup [--aws-region R]`: runs $(LIBEXEC)/condor_annex, waits, and
    exits 0 whatever it said."""
    if args[:1] != ["annex"] or args[1:2] not in (["setup"], ["checksetup"]):
        fail("usage: htcondor annex [-h]\n(this stand-in knows only `annex setup` and `annex checksetup`)", 2)
    command = [str(Path(knob("LIBEXEC") or RELEASE / "libexec") / "condor_annex")]
    if "--aws-region" in args:
        command += ["-aws-region", args[args.index("--aws-region") + 1]]
    command.append("-setup" if args[1] == "setup" else "-check-setup")
    subprocess.run(command, check=False)


TOOLS = {
    "make-personal-from-tarball": make_personal_from_tarball,
    "condor_install": condor_install,
    "condor_master": condor_master,
    "condor_restart": condor_restart,
    "condor_off": condor_off,
    "condor_status": condor_status,
    "condor_q": condor_q,
    "condor_submit": condor_submit,
    "condor_reschedule": condor_reschedule,
    "condor_rm": condor_rm,
    "condor_history": condor_history,
    "condor_config_val": condor_config_val,
    "condor_store_cred": condor_store_cred,
    "condor_annex": condor_annex,
    "htcondor": htcondor,
    "condor_shared_port": condor_shared_port,
}

if __name__ == "__main__":
    if sys.argv[1] != "condor_shared_port":  # a daemon, not a tool our steps run
        with open(ARGV_LOG, "a") as argv_log:
            argv_log.write(json.dumps(sys.argv[1:]) + "\n")
    TOOLS[sys.argv[1]](sys.argv[2:])
