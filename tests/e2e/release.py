"""Build stand-in HTCondor release tarballs in both layouts the installers expect."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sysconfig
import tarfile
from dataclasses import dataclass
from pathlib import Path

from components.contract import CondorRelease

STANDIN = Path(__file__).resolve().parent / "standin" / "condor_tool.py"
TOOLS = [
    "condor_config_val",
    "condor_restart",
    "condor_off",
    "condor_status",
    "condor_q",
    "condor_submit",
    "condor_reschedule",
    "condor_rm",
    "condor_history",
    "condor_store_cred",
    "condor_annex",
]


def wrapper(tool: str, up: str) -> bytes:
    # "$0" keeps the tool's own path in the process's command line, as the real binaries have.
    return f'#!/bin/sh\nexec /usr/bin/python3 "$(dirname "$0"){up}/lib/standin/condor_tool.py" {tool} "$@"\n'.encode()


def copy_bindings(target: Path) -> str:
    """The htcondor wheel's parser, copied where the SSH user can read it (the stand-in imports it)."""
    site = Path(sysconfig.get_paths()["platlib"])
    for package in ("htcondor2", "classad2", "htcondor.libs"):
        shutil.copytree(site / package, target / package)
    subprocess.run(["chmod", "-R", "a+rX", str(target)], check=True)
    return str(target)


# This machine (Debian 12), as HTCondor names its tarballs.
PLATFORM_OF_THIS_MACHINE = "x86_64_Debian12"


def tarball_path(version: str, prefix: str = "") -> str:
    """The stand-in tarball's path as condorTarballUrl names it: with `{platform}` where HTCondor
    builds the release for this machine; else spelled out, as a user sets condorTarballUrl to a
    tarball built for a machine its release's own builds do not cover (8.7 and 10.0 on Debian 12)."""
    built_for_this_machine = PLATFORM_OF_THIS_MACHINE in CondorRelease(version).build_platforms
    platform = "{platform}" if built_for_this_machine else PLATFORM_OF_THIS_MACHINE
    return f"{prefix}/condor-{version}-{platform}-stripped.tar.gz"


@dataclass(frozen=True)
class StandinFiles:
    """Where every stand-in release writes the argv of each tool run, and reads what AWS holds."""

    bindings: str
    argv_log: Path
    aws_state: Path


def build_release(
    version: str,
    platform: str,
    files_of: StandinFiles,
    master_starts: bool = True,
    master_crashes: bool = False,
    never_matches: bool = False,
    padding: int = 0,
) -> bytes:
    """A gzipped tarball named like the real ones: condor-<version>-<platform>-stripped/...

    `master_starts=False`: condor_master fails at once; `master_crashes`: it starts, then dies;
    `never_matches`: the negotiator matches no job to a slot;
    `padding`: that many incompressible bytes more, for a download long enough to cut half-way.
    """
    top = f"condor-{version}-{platform}-stripped"
    modern = tuple(int(part) for part in version.split(".")) >= (9, 0, 0)
    files: dict[str, tuple[bytes, int]] = {
        "lib/standin/condor_tool.py": (
            STANDIN.read_text()
            .replace("@VERSION@", version)
            .replace("@BINDINGS@", files_of.bindings)
            .replace("@ARGV_LOG@", str(files_of.argv_log))
            .replace("@AWS_STATE@", str(files_of.aws_state))
            .encode(),
            0o644,
        ),
        "sbin/condor_master": (
            wrapper("condor_master", "/..")
            if master_starts
            else b"#!/bin/sh\necho 'ERROR: condor_master: cannot open shared object libcondor_utils.so' >&2\nexit 1\n",
            0o755,
        ),
    }
    files["sbin/condor_shared_port"] = (wrapper("condor_shared_port", "/.."), 0o755)
    files.update({f"bin/{tool}": (wrapper(tool, "/.."), 0o755) for tool in TOOLS})
    if tuple(int(part) for part in version.split(".")) >= (24, 11, 0):
        # condor_annex was withdrawn as a user command; `htcondor annex` runs it from libexec.
        files["libexec/condor_annex"] = files.pop("bin/condor_annex")
        files["bin/htcondor"] = (wrapper("htcondor", "/.."), 0o755)
    if master_crashes:
        files["lib/standin/crashes"] = (b"", 0o644)
    if never_matches:
        files["lib/standin/never-matches"] = (b"", 0o644)
    if padding:
        files["lib/standin/padding"] = (os.urandom(padding), 0o644)
    if modern:
        files["bin/make-personal-from-tarball"] = (wrapper("make-personal-from-tarball", "/.."), 0o755)
        files["etc/examples/condor_config.tarball"] = (b"# stand-in\n", 0o644)
    else:
        files["condor_install"] = (wrapper("condor_install", ""), 0o755)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tarball:
        for directory in sorted({str(Path(name).parent) for name in files} | {"."}):
            info = tarfile.TarInfo(f"{top}/{directory}".rstrip("/.") if directory != "." else top)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tarball.addfile(info)
        for name, (content, mode) in sorted(files.items()):
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mode = len(content), mode
            tarball.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def stored_password(password_file: Path) -> bytes:
    """A pool password file decoded as HTCondor writes it: XORed with DE AD BE EF, no trailing NUL."""
    key = bytes([0xDE, 0xAD, 0xBE, 0xEF])
    return bytes(byte ^ key[index % len(key)] for index, byte in enumerate(password_file.read_bytes()))
