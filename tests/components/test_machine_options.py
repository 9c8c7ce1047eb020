"""What makes a move to another machine undo the old machine's steps first, as registered: every
step's replacement trigger is the machine it runs on, and every step but the first is tied to the
first through an input (logging) that replaces it when the first is replaced, and through nothing
else, so that no other replacement (the install's, for a new condorVersion) undoes other steps."""

from __future__ import annotations

import pytest

from tests.harness import COMMAND_TYPES, LOCAL_REACH, run_program

P = "condor-annex"


@pytest.mark.parametrize(
    ("config", "identity"),
    [({}, "annex@203.0.113.7:22"), ({f"{P}:sshUser": "bob", f"{P}:sshPort": "2222"}, "bob@203.0.113.7:2222")],
)
def test_every_step_is_replaced_when_its_machine_changes(config: dict[str, str], identity: str):
    steps = [r for r in run_program(config).registrations if r.type in COMMAND_TYPES]
    assert len(steps) > 10
    for step in steps:
        assert step.replacement_trigger == identity, step.name
        assert step.delete_before_replace, step.name


def test_every_step_but_the_first_is_tied_to_the_first_and_to_nothing_else_through_logging():
    program = run_program()
    preflight = program.named("preflight")
    assert "logging" not in preflight.property_dependencies or not preflight.property_dependencies["logging"]
    for step in (r for r in program.registrations if r.type in COMMAND_TYPES and r.name != "preflight"):
        assert step.property_dependencies["logging"] == [preflight.urn], step.name
        assert "logging" in step.replace_on_changes, step.name
        # Its value is the same as ever: the tie changes no input.
        assert step.inputs["logging"] in ("stdoutAndStderr", "stderr", "none"), step.name


@pytest.mark.parametrize(("config", "kind", "other_kind"), [({}, "remote", "local"), (LOCAL_REACH, "local", "remote")])
def test_a_step_of_either_kind_is_the_same_step_to_the_engine_so_switching_kinds_replaces_it(
    config: dict[str, str | None], kind: str, other_kind: str
):
    """Between a remote host and localhost the step's type changes: through the alias the engine
    takes the old one as the same step, to replace (undone first), not a new one whose old
    counterpart would be deleted last, after the new one's create, removing what it made."""
    program = run_program(config, resolve_aliases=True)
    steps = program.of_type(f"command:{kind}:Command")
    assert steps and not program.of_type(f"command:{other_kind}:Command")
    for step in steps:
        # The type chain and name (the mocks put the root stack's type in front of an alias's chain).
        as_other_kind = step.urn.split("::", 2)[2].replace(f"command:{kind}:Command", f"command:{other_kind}:Command")
        assert any(alias.endswith(f"${as_other_kind}") for alias in step.aliases), step.name
    if kind == "local":
        assert {step.replacement_trigger for step in steps} == {"localhost"}
