#!/usr/bin/env bash
# Step 7, once per region: the user's own check of that region's setup (`condor_annex -check-setup`,
# or from 24.11 `htcondor annex checksetup`), which must end "Your setup looks OK".
# Values (rendered header): INSTALL_DIR CHECK_SETUP_COMMAND KNOBS_DIGEST ACCESS_KEY_ID KEY_WAIT
set -euo pipefail

# What AWS answers, for a while, to an access key made moments ago, and to a known key whose
# policy IAM has not spread yet (IAM is eventually consistent).
UNKNOWN_KEY='InvalidClientTokenId|SignatureDoesNotMatch|AuthFailure|The security token included in the request is invalid'
POLICY_NOT_YET='AccessDenied|is not authorized to perform'

check_setup() {
  # shellcheck disable=SC2086 # CHECK_SETUP_COMMAND is a list of plain words we rendered.
  $CHECK_SETUP_COMMAND 2>&1
}

create() {
  use_condor
  local output waited=0 waiting_for
  log "running $CHECK_SETUP_COMMAND (knobs $KNOBS_DIGEST, access key $ACCESS_KEY_ID)"
  # It can exit 0 when a check fails (and `htcondor annex` always does): judge it by its words.
  until output=$(check_setup) && grep -q "Your setup looks OK" <<<"$output"; do
    if grep -Eq "$UNKNOWN_KEY" <<<"$output"; then
      waiting_for="AWS does not know the new access key yet"
    elif grep -Eq "$POLICY_NOT_YET" <<<"$output"; then
      waiting_for="IAM has not spread the annex user's policy yet"
    else
      die "$CHECK_SETUP_COMMAND did not pass: $output"
    fi
    if [ "$waited" -ge "$KEY_WAIT" ]; then
      die "AWS still refuses the annex user's new access key or its policy after ${KEY_WAIT}s: $output"
    fi
    log "$waiting_for (it takes a few seconds to spread); asking again in 5s"
    sleep 5
    waited=$((waited + 5))
  done
  # Its security probe only warns; a pool whose PASSWORD setup does not work must not pass here.
  if grep -q "Checking security configuration" <<<"$output" \
    && ! grep -q "Checking security configuration\.\.\. OK\." <<<"$output"; then
    die "$CHECK_SETUP_COMMAND found the pool's security configuration broken: $output"
  fi
  log "$output"
}

case "$1" in
  create) create ;;
  # What condor_annex writes into ~/.condor is removed by the condor-dir step, which runs last.
  delete) : ;;
  *) die "unknown action '$1'" ;;
esac
