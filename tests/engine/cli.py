"""Where the engine tests find the Pulumi CLI and its plugins (.ci/engine provides them)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

PASSPHRASE = "engine-test-passphrase"
# What .ci/engine puts in the directory it prints.
ENGINE_TOOLS = ["pulumi", "pulumi-language-python", "pulumi-language-python-exec", "pulumi-resource-command"]


def engine_bin() -> str:
    """Where .ci/engine put the CLI and the plugins; a missing one fails the test: the real engine
    is what these tests are about."""
    found = os.environ.get("PULUMI_ENGINE_BIN") or (os.path.dirname(shutil.which("pulumi") or "") or None)
    missing = [tool for tool in ENGINE_TOOLS if not found or not Path(found, tool).exists()]
    if missing:
        pytest.fail(
            f"no {', '.join(missing)}: run `bash .ci/engine` (bash .ci/run does)"
            " and set PULUMI_ENGINE_BIN to the directory it prints"
        )
    return found
