"""PersonalCondor: the guide's first part, on the Linux machine, over SSH."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pulumi

from components.contract import CondorRelease
from components.machine import Machine, Step, machine_step, script_text

START_TIMEOUT_SECONDS = 120
STOP_TIMEOUT_SECONDS = 60
# How long the keeper waits at boot for a default route before it starts condor_master anyway.
BOOT_NETWORK_WAIT_SECONDS = 120
# A real 24.0.23 runs the guide's test job within seconds of condor_reschedule.
JOB_TIMEOUT_SECONDS = 60
# How soon the crontab starts a condor_master that died (and at every boot).
KEEP_EVERY_MINUTES = 5


def condor_config_text(release: CondorRelease, collector_port: int, public_name: str | None) -> str:
    """Our HTCondor settings: the public interface, the collector port, the name annex instances
    call back at, and how annexes authenticate."""
    lines = [
        "# Managed by the condor-annex Pulumi program; `pulumi destroy` removes this file.",
        "# Public interface: annex instances call back to this machine.",
        "NETWORK_INTERFACE = *",
        "# Reading the queue or the pool takes authentication: jobs' arguments and environments are",
        "# not for whoever reaches the open port (HTCondor's default makes it optional).",
        "SEC_READ_AUTHENTICATION = REQUIRED",
        f"SEC_READ_AUTHENTICATION_METHODS = {release.read_authentication_methods}",
    ]
    if public_name:
        # condor_annex (the ANNEX subsystem) copies the collector's address, expanded here, into
        # every annex instance's configuration (COLLECTOR_HOST; from 24.11 ANNEX_COLLECTOR) and asks
        # AWS to reach COLLECTOR_HOST (annex.cpp, CheckConnectivity.cpp): it must be the public
        # name, while the pool's own daemons keep reaching each other at $(FULL_HOSTNAME).
        lines += [
            "# Where annex instances reach this machine's collector.",
            f"ANNEX.COLLECTOR_HOST = {public_name}:{collector_port}",
        ]
        if release.hpc_annex:
            lines.append(f"ANNEX.ANNEX_COLLECTOR = {public_name}:{collector_port}?sock=ap_collector")
    if release.hpc_annex:
        return "\n".join(
            [
                *lines,
                # The shared port listens on COLLECTOR_PORT: the collector and the AP collector
                # (ANNEX_COLLECTOR) both answer on the port that was opened.
                f"COLLECTOR_PORT = {collector_port}",
                "# The access point for annexes: an AP collector and IDTOKENS signed with the pool's key.",
                "use feature:HPC_ANNEX",
                # The feature gives the schedd two collectors, the pool's and the AP collector, and
                # it finds the negotiator by asking one of them at random (daemon_list.cpp); the AP
                # collector has no negotiator ad, so half the reschedules were lost and a job waited
                # for the next negotiation cycle, up to a minute (seen on a real 25.0.13).
                "# The schedd asks the pool's collector first, where the negotiator is.",
                "SCHEDD.HAD_USE_PRIMARY = true",
                # An annex's startd attaches to the schedd it finds by name in the AP collector
                # (STARTD_DIRECT_ATTACH_SCHEDD_NAME), and a name without an `@` is a host name to
                # resolve first (get_daemon_name.cpp at v25.0.13): the machine's own, which an annex
                # instance rarely can (seen on a real 25.0.13: "unknown host", no job ever ran).
                "# Annex instances find the schedd by this name, with no DNS lookup of this machine's.",
                "SCHEDD_NAME = condor-annex@$(FULL_HOSTNAME)",
            ]
        )
    return "\n".join(
        [
            *lines,
            "CONDOR_HOST = $(FULL_HOSTNAME)",
            # An explicit port: a personal condor defaults to :0, and annex instances copy this verbatim.
            f"COLLECTOR_HOST = $(FULL_HOSTNAME):{collector_port}",
            "# Pool password: how annex instances and this pool authenticate each other.",
            f"SEC_PASSWORD_FILE = $(LOCAL_DIR)/{release.pool_password_file}",
            "SEC_DAEMON_INTEGRITY = REQUIRED",
            "SEC_DAEMON_AUTHENTICATION = REQUIRED",
            "SEC_DAEMON_AUTHENTICATION_METHODS = PASSWORD",
            "SEC_NEGOTIATOR_INTEGRITY = REQUIRED",
            "SEC_NEGOTIATOR_AUTHENTICATION = REQUIRED",
            "SEC_NEGOTIATOR_AUTHENTICATION_METHODS = PASSWORD",
            "SEC_CLIENT_AUTHENTICATION_METHODS = FS, PASSWORD",
            "ALLOW_DAEMON = condor_pool@*",
            *(
                [
                    "# Tokens are signed with a key of their own, which the collector makes at its first",
                    "# start and which never leaves this machine: annex tarballs carry the pool password.",
                    "SEC_TOKEN_POOL_SIGNING_KEY_FILE = $(LOCAL_DIR)/token_signing_key",
                ]
                if release.signs_tokens_with_pool_password
                else []
            ),
        ]
    )


@dataclass
class PersonalCondorArgs:
    machine: Machine
    release: CondorRelease
    install_dir: str
    tarball_url: str
    tarball_sha256: str | None
    collector_port: int
    # The name annex instances call this machine back at (None: HTCondor's $(FULL_HOSTNAME)).
    public_name: str | None
    pool_password: pulumi.Input[str]
    condor_dir: pulumi.Resource


class PersonalCondor(pulumi.ComponentResource):
    """Install, configure, pool password, start and verify; destroy undoes each in reverse."""

    install_dir: str
    condor_sh: str
    config_file: str
    pool_password_file: str
    # The pool answers and runs a job.
    ready: pulumi.Resource
    # The crontab lines that start it at boot (the last machine step of the pool).
    autostart: pulumi.Resource
    keep_stopped_file: str

    def __init__(self, name: str, args: PersonalCondorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("condor-annex:machine:PersonalCondor", name, None, opts)
        release = args.release
        install_values = {"INSTALL_DIR": args.install_dir, "STOP_TIMEOUT": str(STOP_TIMEOUT_SECONDS)}
        # While this file exists the keeper leaves HTCondor stopped (README: keeping HTCondor stopped).
        self.keep_stopped_file = f"{args.install_dir}/local/condor-annex-keep-stopped"

        install = machine_step(
            args.machine,
            Step(
                name=f"{name}-install",
                script="install.sh",
                values={
                    **install_values,
                    "CONDOR_VERSION": release.version,
                    "TARBALL_URL": args.tarball_url,
                    "TARBALL_SHA256": args.tarball_sha256 or "",
                    "INSTALLER": release.installer,
                    "PLATFORMS": " ".join(release.build_platforms),
                },
                depends_on=[args.condor_dir],
                location=[args.install_dir],
            ),
            parent=self,
        )
        config_text = condor_config_text(release, args.collector_port, args.public_name)
        configure = machine_step(
            args.machine,
            Step(
                name=f"{name}-configure",
                script="configure.sh",
                values={
                    **install_values,
                    "CONFIG_FILE": release.config_file,
                    "CONDOR_CONFIG_TEXT": config_text,
                    "INCLUDE_FROM_LOCAL_CONFIG": "no" if release.uses_make_personal_from_tarball else "yes",
                    "PUBLIC_NAME": args.public_name or "",
                },
                depends_on=[install],
                location=[args.install_dir, release.config_file],
            ),
            parent=self,
        )
        store_password = machine_step(
            args.machine,
            Step(
                name=f"{name}-pool-password",
                script="pool_password.sh",
                values=install_values,
                # condor_store_cred's prompt reads up to the newline in every version.
                stdin=pulumi.Output.secret(pulumi.Output.concat(args.pool_password, "\n")),
                depends_on=[configure],
                location=[args.install_dir],
            ),
            parent=self,
        )
        # The start step restarts HTCondor whenever what it runs on changes: our settings (by
        # digest, and whether the configure step found a NAT in front of the machine) or the stored
        # password (by the store step's fresh token, never the password).
        restart_reason = pulumi.Output.format(
            "settings {0}, {1}; {2}",
            hashlib.sha256(config_text.encode()).hexdigest()[:16],
            configure.stdout,
            store_password.stdout,
        )
        start = machine_step(
            args.machine,
            Step(
                name=f"{name}-start",
                script="start.sh",
                values={
                    **install_values,
                    "START_TIMEOUT": str(START_TIMEOUT_SECONDS),
                    "JOB_TIMEOUT": str(JOB_TIMEOUT_SECONDS),
                    "RESTART_REASON": restart_reason,
                    "ANNEX_COLLECTOR_KNOB": release.annex_collector_knob,
                },
                depends_on=[store_password],
                location=[args.install_dir],
            ),
            parent=self,
        )

        # Back after a reboot or a dead master: the user's crontab runs the keeper, a file in the
        # install holding INSTALL_DIR (as "$HOME"/..., which cron sets) and lib.sh's helpers.
        autostart = machine_step(
            args.machine,
            Step(
                name=f"{name}-autostart",
                script="autostart.sh",
                values={
                    "INSTALL_DIR": args.install_dir,
                    "KEEPER_SCRIPT": "#!/usr/bin/env bash\n"
                    + script_text(
                        "keeper.sh",
                        "condor-annex-keeper",
                        {
                            **install_values,
                            "KEEP_STOPPED": self.keep_stopped_file,
                            "BOOT_NETWORK_WAIT": str(BOOT_NETWORK_WAIT_SECONDS),
                        },
                    ),
                    "KEEP_EVERY_MINUTES": str(KEEP_EVERY_MINUTES),
                },
                depends_on=[start],
                location=[args.install_dir],
            ),
            parent=self,
        )

        self.install_dir = args.install_dir
        self.condor_sh = f"{args.install_dir}/condor.sh"
        self.config_file = f"{args.install_dir}/local/{release.config_file}"
        self.pool_password_file = f"{args.install_dir}/local/{release.pool_password_file}"
        self.ready = start
        self.autostart = autostart
        self.register_outputs(
            {
                "install_dir": self.install_dir,
                "condor_sh": self.condor_sh,
                "config_file": self.config_file,
                "pool_password_file": self.pool_password_file,
                "keep_stopped_file": self.keep_stopped_file,
            }
        )
