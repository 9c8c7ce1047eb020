"""Values that pass validation yet look like shell or config syntax reach the machine inert.

Everything free-form enough to carry quotes, `$(...)`, backticks or config syntax past
components/settings.py is sent here through real SSH: the pool password (any one line), a tarball
URL with every character the URL pattern admits, and an install directory whose parts start with
`-` and `.`. No command may run, no config line may appear, and each value must arrive intact.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import PLATFORM_OF_THIS_MACHINE
from tests.e2e.machine import Machine, TarballServer, read_config, snapshot
from tests.e2e.release import stored_password
from tests.e2e.replay import destroy, program_for, up

VERSION = "24.0.23"
HOSTILE_PASSWORD = (
    """'"; touch ~/pwned-quote; $(touch ~/pwned-subst) `touch ~/pwned-tick` ${HOME} \\ """
    "ALLOW_WRITE = * # @=$(ALLOW_DAEMON) -p not-the-password"
)
# %24%28 is `$(` once a shell decodes nothing: curl must receive the URL byte for byte.
HOSTILE_URL_DIR = "/odd,path=x@y+z~w:1%24%28touch%20~%2Fpwned-url%29"
HOSTILE_INSTALL_DIR = "~/.-x_/-rf"


def pwned(home: Path) -> list[str]:
    return [str(path) for root in (home, Path("/tmp"), Path("/")) for path in root.glob("pwned*")]


def test_hostile_but_valid_values_are_inert(machine: Machine, tarballs: TarballServer, bindings: str, fresh_home: Path):
    tarball = f"/condor-{VERSION}-{PLATFORM_OF_THIS_MACHINE}-stripped.tar.gz"
    tarballs.files[HOSTILE_URL_DIR + tarball] = tarballs.files[tarball]
    before = snapshot(fresh_home)
    program, _ = program_for(
        machine,
        tarballs,
        VERSION,
        prefix=HOSTILE_URL_DIR,
        poolPassword=HOSTILE_PASSWORD,
        installDir=HOSTILE_INSTALL_DIR,
    )
    up(machine, program)

    assert pwned(fresh_home) == [], "a config value ran as a command"
    assert HOSTILE_URL_DIR + tarball in tarballs.requests, "the URL was altered on its way to curl"
    install_dir = fresh_home / ".-x_" / "-rf"
    password_file = install_dir / "local" / "condor_pool_password"
    assert stored_password(password_file) == HOSTILE_PASSWORD.encode(), "the pool password arrived altered"
    values = read_config(machine, bindings, install_dir, ["ALLOW_WRITE", "SEC_PASSWORD_FILE", "ALLOW_DAEMON"])
    assert values["ALLOW_WRITE"] is None, "the password became a config line"
    assert values["SEC_PASSWORD_FILE"] == str(password_file)
    assert values["ALLOW_DAEMON"] == "condor_pool@*"

    destroy(machine, program)
    assert pwned(fresh_home) == []
    assert snapshot(fresh_home) == before
