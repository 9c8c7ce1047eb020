"""The lock files hold what the requirements files ask for: CI installs requirements-dev.lock, a user
and the workflows requirements.lock, and both must agree with the pins the README's figures hold for."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement

from tests.harness import ROOT


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(path: Path) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-r")]


def locked(path: Path) -> dict[str, str]:
    return {normalized(r.name): str(r.specifier).removeprefix("==") for r in requirements(path)}


def test_each_lock_satisfies_its_requirements_and_the_program_is_pinned_alike_in_both():
    program, dev = locked(ROOT / "requirements.lock"), locked(ROOT / "requirements-dev.lock")
    for requirement in requirements(ROOT / "requirements.txt"):
        assert str(requirement.specifier).startswith("=="), f"{requirement} is not pinned"
        assert program[normalized(requirement.name)] == dev[normalized(requirement.name)]
        assert requirement.specifier.contains(program[normalized(requirement.name)])
    for requirement in requirements(ROOT / "requirements-dev.txt"):
        assert requirement.specifier.contains(dev[normalized(requirement.name)]), requirement
    assert all(dev[name] == version for name, version in program.items()), "the two locks disagree"
