"""Seconds from the user's annex command to the guide's job completed on the annex instance, and the
AWS calls the annex user's key made, for each real HTCondor line (../shared/real-htcondor), directly
reachable and behind a NAT. Needs root, as CI has (network namespaces, sshd, iptables).

The figures are those tests/e2e/test_annex.py prints as it runs (one run of its cases, so the
benchmark measures exactly what the test checks): the real condor_annex or `htcondor annex create`,
the instance's boot from the image the stack's build steps made, HTCondor's boot script, the
annex joining the pool and the job's run, against AWS as moto plays it. On AWS an instance's own
start (EC2 launch and OS boot, a minute or two) comes on top; here it is a namespace's.

    sudo .venv/bin/python bench/annex_job.py

Not while the end-to-end tests run: both log in as, and reset the home of, the same user.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile

from common import ROOT, machine_description, table

CASE = re.compile(r"test_an_annex_runs_the_guides_job\[(?P<case>[^\]]+)\]")
# pytest -v prints a test's first output on the line that names it: the figures may follow the name.
FIGURES = {
    "seconds": re.compile(r"\b(?P<version>[\d.]+): annex command to the job's completion: (?P<value>[\d.]+)s$"),
    "calls": re.compile(r"\b(?P<version>[\d.]+): AWS calls with the annex user's key: (?P<value>\d+)$"),
}


def main() -> None:
    with tempfile.TemporaryDirectory() as basetemp:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-s",
                "-v",
                "-p",
                "no:cacheprovider",
                f"--basetemp={basetemp}",
                "tests/e2e/test_annex.py",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    rows: dict[str, dict[str, str]] = {}
    case = ""
    for line in run.stdout.splitlines():
        started = CASE.search(line)
        case = started.group("case") if started else case
        for figure, pattern in FIGURES.items():
            found = pattern.search(line.strip())
            if found and case:
                rows.setdefault(case, {})[figure] = found.group("value")
    if run.returncode != 0 or not rows:
        sys.exit(f"tests/e2e/test_annex.py failed; its output:\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}")
    print(machine_description())
    print()
    print(
        table(
            ["case", "annex command to the job completed, s", "AWS calls with the annex user's key"],
            [[case, figures.get("seconds", "?"), figures.get("calls", "?")] for case, figures in rows.items()],
        )
    )


if __name__ == "__main__":
    main()
