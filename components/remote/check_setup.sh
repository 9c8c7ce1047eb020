#!/usr/bin/env bash
# Step 7: the user's own `condor_annex -check-setup`, which must end "Your setup looks OK".
# Values (rendered header): INSTALL_DIR CHECK_SETUP_ARGS
set -euo pipefail

ANNEX_LOGS="AnnexLog AnnexGahpLog AnnexAuditLog"

create() {
  use_condor
  local output
  # shellcheck disable=SC2086 # CHECK_SETUP_ARGS is a list of plain words we rendered.
  output=$(condor_annex -check-setup $CHECK_SETUP_ARGS 2>&1) || die "condor_annex -check-setup failed: $output"
  grep -q "Your setup looks OK" <<<"$output" || die "condor_annex -check-setup did not pass: $output"
  log "$output"
}

# condor_annex writes its logs into ~/.condor; they are ours only if we made the directory.
delete() {
  local log_file
  [ -f "$HOME/.condor/.created-by-condor-annex" ] || return 0
  for log_file in $ANNEX_LOGS; do
    rm -f "$HOME/.condor/$log_file"
  done
}

case "$1" in
  create) create ;;
  delete) delete ;;
  *) die "unknown action '$1'" ;;
esac
