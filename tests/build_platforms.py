"""Writes components/build_platforms.json: the Linux platforms HTCondor builds each release for, as
nmi_tools/nmi-build-platforms lists them at the release's tag, from a clone of HTCondor's repository.

    python -m tests.build_platforms /path/to/htcondor   # a clone with its tags (`fetch` brings one)

An entry is a build platform's name, which is the tarball's (condor-<version>-<platform>-stripped.tar.gz):
`docker://htcondor/nmi-build:x86_64_AlmaLinux9-24002300` is x86_64_AlmaLinux9 (from 25.8 the line's
first field, `...-25080100,x86-AL9,ubuntu-latest,all`). Windows and macOS
builds are left out: the machine runs Linux.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from components.contract import OLDEST_SUPPORTED

OUTPUT = Path(__file__).resolve().parents[1] / "components" / "build_platforms.json"
# V8_7_1 and V10_0_9 up to 23.0, v23.0.0 and later.
TAG = re.compile(r"^[Vv](\d+)[._](\d+)[._](\d+)$")


def platforms_at(repository: Path, tag: str) -> list[str]:
    listed = subprocess.run(
        ["git", "-C", str(repository), "show", f"{tag}:nmi_tools/nmi-build-platforms"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = set()
    for line in listed.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        # From 25.8 a line is CSV (image, short name, VM, tags); before, the image alone.
        image = line.split(",", 1)[0]
        name = re.sub(r"-\d+$", "", image.removeprefix("docker://").rsplit(":", 1)[-1])
        if not re.search(r"Windows|MacOSX|macOS", name):
            names.add(name)
    return sorted(names)


def main(repository: Path) -> None:
    tags = subprocess.run(["git", "-C", str(repository), "tag"], capture_output=True, text=True, check=True).stdout
    releases = {}
    for tag in tags.split():
        match = TAG.fullmatch(tag)
        if match and tuple(int(part) for part in match.groups()) >= OLDEST_SUPPORTED:
            releases[tuple(int(part) for part in match.groups())] = tag
    table = {".".join(map(str, version)): platforms_at(repository, tag) for version, tag in sorted(releases.items())}
    # One release a line: a new tag is a one-line diff.
    OUTPUT.write_text("{\n" + ",\n".join(f" {json.dumps(v)}: {json.dumps(p)}" for v, p in table.items()) + "\n}\n")
    print(f"{len(table)} releases, {min(releases)} to {max(releases)}, written to {OUTPUT}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
