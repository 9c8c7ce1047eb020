"""Make the repository importable as the program sees it (components/, lambda_src/)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "lambda_src"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
