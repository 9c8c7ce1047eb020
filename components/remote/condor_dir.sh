#!/usr/bin/env bash
# Step 0: ~/.condor, where our client steps and HTCondor's own tools write, and from 24.11 the
# ~/.hpc-annex that `htcondor annex create` needs; destroy leaves both as they were.
# Every other step waits for this one, so its delete runs after theirs, when nothing writes there.
# Values (rendered header): HPC_ANNEX_DIR (empty before 24.11)
set -euo pipefail

CREATED_MARK="$CONDOR_DIR/.condor-annex-created"
# Made by us: `htcondor annex create` refuses to run without it ("must be a directory") and never
# makes it itself (annex_create.py at v25.0.13 tests is_dir() before its mkdir).
HPC_ANNEX_MARK="$CONDOR_DIR/.condor-annex-made-hpc-annex"
# What HTCondor's tools write there when our steps or the user's annexes run them: condor_annex on
# every run, a non-root user's condor_q, condor_status and condor_submit (known_hosts), and
# `htcondor annex create` (the password it hands its annexes, from 24.11).
TOOL_FILES="AnnexLog AnnexGahpLog AnnexAuditLog AnnexCommand.state known_hosts annex_password_file"
# condor_annex's config tarball, left behind when an annex creation fails after making it.
TOOL_FILE_PATTERN="temporary.tar.gz.*"

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
  if [ -n "$HPC_ANNEX_DIR" ] && [ ! -d "$HPC_ANNEX_DIR" ]; then
    mkdir -m 700 "$HPC_ANNEX_DIR"
    : >"$HPC_ANNEX_MARK"
    log "made $HPC_ANNEX_DIR, which htcondor annex create needs"
  fi
}

delete() {
  if [ -f "$HPC_ANNEX_MARK" ]; then
    rmdir "${HPC_ANNEX_DIR:-$HOME/.hpc-annex}" 2>/dev/null || log "left ~/.hpc-annex: it holds files that are not ours"
    rm -f "$HPC_ANNEX_MARK"
  fi
  [ -f "$CONDOR_DIR_RECORD" ] || return 0
  local name
  for name in $TOOL_FILES; do
    held_before "$name" || rm -f "${CONDOR_DIR:?}/$name"
  done
  for name in "$CONDOR_DIR"/$TOOL_FILE_PATTERN; do
    [ -e "$name" ] || continue
    held_before "$(basename "$name")" || rm -f "$name"
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
