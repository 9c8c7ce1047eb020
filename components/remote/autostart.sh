#!/usr/bin/env bash
# Step 5: the personal HTCondor back after a reboot, and after its master dies, without anyone
# acting: the keeper in the install, run from the user's own crontab at boot and every few minutes.
# Values (rendered header): INSTALL_DIR KEEPER_SCRIPT KEEP_EVERY_MINUTES
set -euo pipefail

KEEPER="$INSTALL_DIR/local/condor-annex-keeper"
KEEPER_LOG="$INSTALL_DIR/local/condor-annex-keeper.log"
# Where the crontab is staged, removed however the step ends.
WORK=""
trap '[ -z "$WORK" ] || rm -rf "$WORK"' EXIT

# The user's crontab into $1; false when they have none. Any other refusal (cron.allow) stops here.
read_crontab() {
  local errors
  errors=$(crontab -l 2>&1 >"$1") && return 0
  case "$errors" in *"no crontab for"*) return 1 ;; esac
  die "crontab -l failed, so HTCondor cannot be started at boot: $errors"
}

create() {
  command -v crontab >/dev/null \
    || die "crontab is not installed on $(hostname); install cron (Debian, Ubuntu) or cronie (RHEL and alike)"
  printf '%s\n' "$KEEPER_SCRIPT" | atomic_write "$KEEPER" 700
  local lines
  WORK=$(mktemp -d)
  read_crontab "$WORK/crontab" || rm -f "$WORK/crontab"
  lines=$(printf '@reboot /bin/bash %s boot >>%s 2>&1\n*/%s * * * * /bin/bash %s >>%s 2>&1' \
    "$KEEPER" "$KEEPER_LOG" "$KEEP_EVERY_MINUTES" "$KEEPER" "$KEEPER_LOG")
  put_block "$WORK/crontab" "$lines" 600
  crontab "$WORK/crontab" || die "crontab refused the new lines"
  log "the crontab starts HTCondor at boot, and again within ${KEEP_EVERY_MINUTES} minutes if condor_master dies"
}

# The user's crontab back as it was: our lines out, and no crontab if there was none before us.
delete() {
  if command -v crontab >/dev/null; then
    WORK=$(mktemp -d)
    if read_crontab "$WORK/crontab" && grep -qxF "$(begin_mark "")" "$WORK/crontab"; then
      drop_block "$WORK/crontab"
      if [ -f "$WORK/crontab" ]; then crontab "$WORK/crontab"; else crontab -r; fi
    fi
  fi
  rm -f "$KEEPER" "$INSTALL_DIR/local/.condor-annex-keeper.lock"
}

case "$1" in
  create) create ;;
  delete) delete ;;
  *) die "unknown action '$1'" ;;
esac
