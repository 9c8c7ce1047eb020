"""The annex guard, made after everything else, so that destroy asks it first: tests/e2e/test_annex.py
has it refuse, and end, real annexes; tests/e2e/test_machine.py the stand-in's."""

from __future__ import annotations

import pytest

from tests.harness import JOIN, Program, first_users_setup, run_program

P = "condor-annex"


def waits_for(program: Program, name: str) -> set[str]:
    """Every resource the named one comes after, through components, as the engine expands them."""
    found: set[str] = set()
    pending = [program.named(name).urn]
    while pending:
        registration = program.by_urn(pending.pop())
        for dependency in registration.dependencies:
            for leaf in program.resources_under(dependency):
                if leaf.urn not in found:
                    found.add(leaf.urn)
                    pending.append(leaf.urn)
    return found


@pytest.mark.parametrize(
    "config",
    [{}, {f"{P}:regions": '["us-east-1", "eu-west-2"]'}, JOIN],
    ids=["one-region", "two-regions", "joining"],
)
def test_destroy_undoes_nothing_before_the_guard(config: dict[str, str]):
    program = run_program(config, account={"us-east-1": first_users_setup()} if config is JOIN else None)
    before = waits_for(program, "annex-guard")
    everything = {
        r.urn
        for r in program.registrations
        if r.name != "annex-guard" and (r.type.startswith("aws:") or r.type.startswith("command:"))
    }
    assert everything - before == set(), "destroy could undo these while annexes run"


@pytest.mark.parametrize(
    "version, tool, region_option",
    [("25.0.13", "libexec", "yes"), ("24.0.23", "condor_annex", "yes"), ("8.7.3", "condor_annex", "no")],
)
def test_it_asks_with_the_lines_own_condor_annex(version: str, tool: str, region_option: str):
    guard = run_program({f"{P}:condorVersion": version}).named("annex-guard").inputs["delete"]
    assert f"ANNEX_TOOL={tool}\n" in guard and f"REGION_OPTION={region_option}\n" in guard
    assert "ON_DESTROY=refuse\n" in guard and "REGIONS=us-east-1\n" in guard


def test_annexes_on_destroy_reaches_the_guard_alone():
    refusing = run_program()
    ending = run_program({f"{P}:annexesOnDestroy": "end"})
    assert ending.changed_from(refusing) == ["annex-guard"]
    assert "ON_DESTROY=end\n" in ending.named("annex-guard").inputs["delete"]
