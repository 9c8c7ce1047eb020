"""Every command the README gives is one a test runs: each line of its ```bash blocks is in the list
of README commands of the test that runs it, so a command added to the README without a test, or
changed in one place only, fails here."""

from __future__ import annotations

import re

from tests.e2e.test_engine import README_AFTER_A_KILLED_CLI, README_MACHINE_GONE_FOR_GOOD, README_ROTATE_THE_KEY
from tests.e2e.test_keeper import README_KEEP_STOPPED, README_LET_IT_RUN
from tests.engine.test_quick_start import README_QUICK_START
from tests.harness import ROOT

# Run as written, by the test that holds each list (the engine tests run `pulumi up --yes` and
# `pulumi destroy` through the Automation API, which runs the CLI's own up and destroy).
RUN_AS_WRITTEN = {
    *README_QUICK_START,
    *README_AFTER_A_KILLED_CLI,
    *README_MACHINE_GONE_FOR_GOOD,
    *README_ROTATE_THE_KEY,
    README_KEEP_STOPPED,
    README_LET_IT_RUN,
    # tests/e2e/test_engine.py's whole life ends with the stack's destroy.
    "pulumi destroy",
    # CI runs the test command itself (.github/workflows/test.yml, and every submission's CI).
    "bash .ci/run",
}
# "Using your annex": tests/e2e/test_annex.py runs these commands from the stack's `annexCommands`
# output, which gives them for the user's release and regions, with its own annex and job names.
RUN_FROM_ANNEX_COMMANDS = {
    ". ~/condor-25.0.13/condor.sh",
    "mkdir -p ~/annex-job && cd ~/annex-job",
    "printf 'executable = /bin/sleep\\narguments = 600\\nlog = sleep.log\\nqueue\\n' > sleep.submit",
    "htcondor job submit --annex-name MyFirstAnnex sleep.submit",
    "htcondor annex create MyFirstAnnex m5.large@aws-ec2",
    "htcondor annex status MyFirstAnnex",
    "condor_q",
    "htcondor annex shutdown MyFirstAnnex",
    "printf '%s\\n' 'executable = /bin/sleep' 'arguments = 600' 'log = sleep.log' '+MayUseAWS = TRUE' "
    "'requirements = AnnexName =?= \"MyFirstAnnex\"' 'queue' > sleep.submit",
    "condor_annex -aws-region us-east-1 -count 1 -annex-name MyFirstAnnex",
    "condor_submit sleep.submit",
    "condor_annex -aws-region us-east-1 -annex-name MyFirstAnnex -status",
    "condor_status -annex MyFirstAnnex",
    "condor_off -annex MyFirstAnnex",
}


def readme_commands() -> list[str]:
    """Each command of the README's bash blocks: continued lines joined, comments dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S):
        for line in block.replace("\\\n  ", "").splitlines():
            command = re.sub(r"\s+# .*$", "", line).rstrip()
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def test_every_readme_command_is_run_by_a_test():
    commands = readme_commands()
    assert len(commands) > 20, "the README's commands were not found"
    unrun = [command for command in commands if command not in RUN_AS_WRITTEN | RUN_FROM_ANNEX_COMMANDS]
    assert not unrun, f"README commands no test runs: {unrun}"


def test_the_readme_gives_the_quick_start_in_the_order_it_is_typed():
    commands = readme_commands()
    start = commands.index(README_QUICK_START[0])
    assert commands[start : start + len(README_QUICK_START)] == README_QUICK_START
