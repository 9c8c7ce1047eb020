#!/usr/bin/env bash
# The Pulumi CLI run as another account, for a test whose steps run on this machine itself as the
# machine's user (host: localhost refuses root). The Automation API gets the engine's events over
# TCP, so nothing it made as root needs to be the account's; but it asks the CLI's version without
# the workspace's environment, and the CLI would log that into the account's own home.
# Values (rendered header): PULUMI_AS_USER PULUMI_REAL_CLI PULUMI_HOME
set -euo pipefail

export PULUMI_HOME
exec setpriv --reuid="$PULUMI_AS_USER" --regid="$(id -g "$PULUMI_AS_USER")" --init-groups "$PULUMI_REAL_CLI" "$@"
