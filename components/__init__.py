"""The condor-annex program's components."""

import sys

# The components use 3.10's `X | Y` unions at run time; on 3.9 they would fail with a TypeError.
if sys.version_info < (3, 10):  # noqa: UP036 - for a user whose python3 is older than ours
    raise SystemExit(
        f"condor-annex needs Python 3.10 or later; this is {sys.version.split()[0]}. "
        "Make the virtualenv with a newer python3 (python3.10 -m venv .venv)."
    )
