"""Which host key the steps accept: known_hosts as OpenSSH's own ssh-keygen reads it (9.2p1 here),
and the up refused before anything runs when the key is unknown or has changed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from components import host_key
from components.host_key import HostKey, HostKeyError, known_host_keys
from components.settings import ConfigError
from tests.e2e.machine import host_key_line
from tests.harness import run_program

P = "condor-annex"
UNPINNED = {f"{P}:sshHostKey": None, f"{P}:sshPort": "2222"}


def new_key(directory: Path, name: str, key_type: str = "ed25519") -> Path:
    path = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", key_type, "-N", "", "-f", str(path)], check=True)
    return Path(f"{path}.pub")


def as_host_key(public_key: Path) -> HostKey:
    return HostKey(*host_key_line(public_key).split())


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The home of the user running pulumi, with an empty ~/.ssh."""
    (tmp_path / ".ssh").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def known_hosts(home: Path, *lines: str, hashed: bool = False) -> Path:
    path = home / ".ssh" / "known_hosts"
    path.write_text("".join(f"{line}\n" for line in lines))
    if hashed:
        subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(path)], check=True, capture_output=True)
    return path


def entry(name: str, public_key: Path) -> str:
    return f"{name} {host_key_line(public_key)}"


@pytest.mark.parametrize("hashed", [False, True])
def test_the_key_known_hosts_holds_for_that_host_and_port_is_the_one_accepted(home: Path, hashed: bool):
    machine, elsewhere = new_key(home, "machine"), new_key(home, "elsewhere")
    known_hosts(
        home,
        entry("203.0.113.7", elsewhere),  # port 22, not the machine's 2222
        entry("[203.0.113.7]:2222", machine),
        entry("[198.51.100.4]:2222", elsewhere),
        hashed=hashed,
    )
    if hashed:
        assert "203.0.113.7" not in (home / ".ssh" / "known_hosts").read_text()
    connection = run_program(UNPINNED).named("personal-condor-install").inputs["connection"]
    assert connection["hostKey"] == as_host_key(machine).line


def test_ed25519_is_chosen_over_the_other_types_and_marker_lines_are_no_keys(home: Path):
    rsa, ecdsa, ed25519 = new_key(home, "rsa", "rsa"), new_key(home, "ecdsa", "ecdsa"), new_key(home, "ed", "ed25519")
    path = known_hosts(
        home,
        f"@cert-authority [203.0.113.7]:2222 {host_key_line(rsa)}",
        entry("[203.0.113.7]:2222", rsa),
        entry("[203.0.113.7]:2222", ecdsa),
        entry("[203.0.113.7]:2222", ed25519),
    )
    assert [key.type for key in known_host_keys("203.0.113.7", 2222, path)] == [
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ssh-ed25519",
    ]
    connection = run_program(UNPINNED).named("preflight").inputs["connection"]
    assert connection["hostKey"] == as_host_key(ed25519).line


def test_the_fingerprint_is_the_one_ssh_keygen_prints(tmp_path: Path):
    for key_type in ("ed25519", "rsa", "ecdsa"):
        public_key = new_key(tmp_path, key_type, key_type)
        printed = subprocess.run(["ssh-keygen", "-lf", str(public_key)], capture_output=True, text=True, check=True)
        assert as_host_key(public_key).fingerprint == printed.stdout.split()[1]


@pytest.mark.parametrize("file", ["missing", "other hosts only"])
def test_an_unknown_host_stops_the_up_before_anything_with_the_command_that_records_it(home: Path, file: str):
    if file != "missing":
        known_hosts(home, entry("[203.0.113.7]:22", new_key(home, "other")))
    with pytest.raises(HostKeyError) as raised:
        run_program(UNPINNED)
    message = str(raised.value)
    assert f"the host key of 203.0.113.7 port 2222 is not in {home}/.ssh/known_hosts" in message
    assert "ssh -p 2222 annex@203.0.113.7 true" in message
    assert f"{P}:sshHostKey" in message and f"{P}:sshAcceptAnyHostKey" in message


def test_a_preview_of_an_unknown_host_runs_and_says_the_up_will_refuse(home: Path):
    """A pull request's runner has no known_hosts: its preview shows every step, and warns."""
    preview = run_program(UNPINNED, preview=True)
    connection = preview.named("personal-condor-install").inputs["connection"]
    assert "hostKey" not in connection
    assert any(
        "`pulumi up` will refuse" in line and "ssh -p 2222 annex@203.0.113.7 true" in line and f"{P}:sshHostKey" in line
        for line in preview.logs
    )
    with pytest.raises(HostKeyError):
        run_program(UNPINNED)


def test_nothing_is_registered_when_the_host_is_unknown(home: Path):
    from tests.harness import Program

    program = Program()
    with pytest.raises(HostKeyError):
        run_program(UNPINNED, into=program)
    assert program.registrations == []


@pytest.mark.parametrize("pinned_by", ["known_hosts", "sshHostKey"])
def test_a_changed_key_stops_the_up_naming_the_host_and_both_fingerprints(home: Path, pinned_by: str):
    known, offered = new_key(home, "known"), as_host_key(new_key(home, "offered"))
    config = dict(UNPINNED)
    if pinned_by == "known_hosts":
        known_hosts(home, entry("[203.0.113.7]:2222", known))
    else:
        config[f"{P}:sshHostKey"] = as_host_key(known).line
    with pytest.raises(HostKeyError) as raised:
        run_program(config, offered_host_key=offered)
    message = str(raised.value)
    assert "the host key of 203.0.113.7 port 2222 has changed" in message
    assert as_host_key(known).fingerprint in message and offered.fingerprint in message
    assert "ssh-keygen -R '[203.0.113.7]:2222'" in message
    # A preview never asks the machine, so it cannot tell.
    assert run_program(config, preview=True, offered_host_key=offered).of_type("command:remote:Command")


def test_the_same_key_offered_passes_and_a_silent_machine_is_left_to_the_pinned_steps(home: Path):
    known = new_key(home, "known")
    known_hosts(home, entry("[203.0.113.7]:2222", known))
    assert run_program(UNPINNED, offered_host_key=as_host_key(known)).of_type("command:remote:Command")
    quiet = run_program(UNPINNED, offered_host_key=None)
    assert any("could not ask 203.0.113.7 port 2222" in line for line in quiet.logs)


def test_a_machine_gone_for_good_needs_no_known_key(home: Path):
    program = run_program({**UNPINNED, f"{P}:machineGone": "true"})
    assert "hostKey" not in program.named("preflight").inputs["connection"]


def test_the_opt_out_accepts_any_key_and_says_so(home: Path):
    program = run_program({**UNPINNED, f"{P}:sshAcceptAnyHostKey": "true"})
    assert "hostKey" not in program.named("preflight").inputs["connection"]
    assert any("warning:" in line and "accept any host key" in line for line in program.logs)


@pytest.mark.parametrize(
    "config, words",
    [
        ({f"{P}:sshAcceptAnyHostKey": "true"}, "keep one of them"),
        ({f"{P}:sshAcceptAnyHostKey": "yes"}, "true or false"),
        (
            {
                f"{P}:host": "localhost",
                f"{P}:sshUser": None,
                f"{P}:sshHostKey": None,
                f"{P}:sshAcceptAnyHostKey": "true",
            },
            f"{P}:sshAcceptAnyHostKey is set, but host is localhost",
        ),
    ],
)
def test_opt_out_values_that_make_no_sense_are_refused(config: dict[str, str], words: str):
    with pytest.raises(ConfigError, match=words):
        run_program(config)


def test_a_keyscan_that_outlives_its_timeout_is_a_machine_that_cannot_be_asked(monkeypatch: pytest.MonkeyPatch):
    """ssh-keyscan's -T bounds its reads, not the name lookup before them: a hung lookup must leave
    the key to the pinned steps, not end the program with a traceback."""

    def hangs(argv: list[str], **options: object) -> None:
        raise subprocess.TimeoutExpired(argv, options["timeout"])

    monkeypatch.setattr(subprocess, "run", hangs)
    assert host_key.offered_host_key("203.0.113.7", 22, "ssh-ed25519") is None
