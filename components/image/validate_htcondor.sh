#!/usr/bin/env bash
# The annex image's check before it is saved: HTCondor's programs start here (every library they
# need is on the image), its configuration reads, and HTCondor's boot script is in place.
# Values (rendered header): CONDOR_VERSION
set -euo pipefail

for program in /opt/condor/sbin/condor_master /opt/condor/sbin/condor_startd; do
  "$program" -version | grep -qF "\$CondorVersion: $CONDOR_VERSION " \
    || { echo "condor-annex image: ERROR: $program is not HTCondor $CONDOR_VERSION" >&2; exit 1; }
done
CONDOR_CONFIG=/etc/condor/condor_config /opt/condor/bin/condor_config_val LOCAL_CONFIG_DIR >/dev/null
bash -n /usr/libexec/condor/condor-annex-ec2
echo "condor-annex image: HTCondor $CONDOR_VERSION starts and reads its configuration" >&2
