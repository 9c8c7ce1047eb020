"""IAM's access keys, as far as the rotation test needs them: the keys that exist, in the stand-in's
AWS state (which its `-check-setup` reads: a key not there is refused as AWS refuses a deleted one),
and a log of every create and delete with its time.

    python -m tests.e2e.fake_iam create|delete <aws state file> <generation>

`create` prints the key's id and secret, one a line, as the machine program takes them.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def key_id(generation: int) -> str:
    return f"AKIAENGINEROTATE{generation:04d}"


def secret_key(generation: int) -> str:
    return f"SENTINEL-engine-rotated-secret-{generation}"


def main(action: str, state_file: Path, generation: int) -> None:
    state = json.loads(state_file.read_text())
    keys, log = state.setdefault("access_keys", []), state.setdefault("iam_log", [])
    key = key_id(generation)
    if action == "create":
        keys.append(key)
    else:
        keys.remove(key)
    log.append([action, key, time.time()])
    # Replaced whole: the stand-in may be reading it.
    staged = state_file.with_suffix(".staged")
    staged.write_text(json.dumps(state))
    staged.chmod(0o644)
    os.replace(staged, state_file)
    if action == "create":
        print(f"{key}\n{secret_key(generation)}")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]))
