"""What a PR preview pays before its first API call: evaluating the program.

Times the whole program under mocks (tests/harness.py) against a program of one S3 bucket, both
in a fresh interpreter (imports included, as `pulumi preview` starts one) and again in a warm one,
and prints the ratio. Medians of several runs.

    .venv/bin/python bench/evaluation_time.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, machine_description, table

from tests.harness import PROGRAM, run_program

ONE_BUCKET = 'import pulumi_aws as aws\n\naws.s3.Bucket("only")\n'
COLD_RUNS = 5
WARM_RUNS = 10


def cold_seconds(source: Path) -> float:
    """One evaluation in a new interpreter, measured inside it (interpreter start-up excluded)."""
    script = (
        "import sys, time; started = time.perf_counter(); "
        f"sys.path.insert(0, {str(ROOT)!r}); from tests.harness import run_program; "
        f"from pathlib import Path; run_program(source=Path({str(source)!r})); "
        "print(time.perf_counter() - started)"
    )
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return float(result.stdout.strip().splitlines()[-1])


def warm_seconds(source: Path) -> float:
    started = time.perf_counter()
    run_program(source=source)
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        bucket_only = Path(scratch) / "__main__.py"
        bucket_only.write_text(ONE_BUCKET)
        rows = []
        for label, measure, runs in (("fresh interpreter", cold_seconds, COLD_RUNS), ("warm", warm_seconds, WARM_RUNS)):
            # One unmeasured run of each, so neither pays for a cold file cache.
            measure(PROGRAM)
            measure(bucket_only)
            ours = statistics.median(measure(PROGRAM) for _ in range(runs))
            baseline = statistics.median(measure(bucket_only) for _ in range(runs))
            rows.append([label, f"{ours:.2f}", f"{baseline:.2f}", f"{ours / baseline:.1f}x", runs])
    print(machine_description())
    print()
    print(table(["evaluation", "whole program s", "one bucket s", "ratio", "runs (median)"], rows))


if __name__ == "__main__":
    main()
