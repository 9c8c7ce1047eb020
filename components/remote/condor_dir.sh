#!/usr/bin/env bash
# Step 0: ~/.condor, where our client steps and HTCondor's own tools write; destroy leaves it as it was.
# Every other step waits for this one, so its delete runs after theirs, when nothing writes there.
# Values (rendered header): none
set -euo pipefail

CREATED_MARK="$CONDOR_DIR/.condor-annex-created"
# What HTCondor's tools write there when our steps run them: condor_annex on every run, and a
# non-root user's condor_q, condor_status and condor_submit (known_hosts).
TOOL_FILES="AnnexLog AnnexGahpLog AnnexAuditLog AnnexCommand.state known_hosts"

create() {
  if [ ! -d "$CONDOR_DIR" ]; then
    mkdir -m 700 "$CONDOR_DIR"
    : >"$CREATED_MARK"
  fi
  # A re-run keeps the first record: by then our own files are there too.
  if [ ! -f "$CONDOR_DIR_RECORD" ]; then
    local held
    # Listed before the record is written, so its own staging file is not among the names.
    held=$(find "$CONDOR_DIR" -mindepth 1 -maxdepth 1 ! -name "$(basename "$CREATED_MARK")" -printf '%f\n')
    { [ -z "$held" ] || printf '%s\n' "$held"; } | atomic_write "$CONDOR_DIR_RECORD" 600
    log "recorded what $CONDOR_DIR held before us ($(wc -l <"$CONDOR_DIR_RECORD") entries)"
  fi
}

delete() {
  [ -f "$CONDOR_DIR_RECORD" ] || return 0
  local name
  for name in $TOOL_FILES; do
    held_before "$name" || rm -f "${CONDOR_DIR:?}/$name"
  done
  rm -f "$CONDOR_DIR_RECORD"
  if [ -f "$CREATED_MARK" ]; then
    rm -f "$CREATED_MARK"
    rmdir "$CONDOR_DIR" 2>/dev/null || log "left $CONDOR_DIR: it holds files that are not ours"
  fi
}

case "$1" in
  create) create ;;
  delete) delete ;;
  *) die "unknown action '$1'" ;;
esac
