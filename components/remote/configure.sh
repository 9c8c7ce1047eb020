#!/usr/bin/env bash
# Step 2: our settings (public interface, collector port, how annexes authenticate) in a file of our own.
# Values (rendered header): INSTALL_DIR CONFIG_FILE CONDOR_CONFIG_TEXT INCLUDE_FROM_LOCAL_CONFIG
set -euo pipefail

LOCAL_DIR="$INSTALL_DIR/local"
OURS="$LOCAL_DIR/$CONFIG_FILE"
# 8.7.x reads only condor_config.local, so it gets one managed include line; 9.0+ reads config.d/.
LOCAL_CONFIG="$LOCAL_DIR/condor_config.local"

create() {
  [ -d "$LOCAL_DIR" ] || die "no HTCondor install at $INSTALL_DIR (run the install step first)"
  printf '%s\n' "$CONDOR_CONFIG_TEXT" | atomic_write "$OURS" 644
  if [ "$INCLUDE_FROM_LOCAL_CONFIG" = yes ]; then
    put_block "$LOCAL_CONFIG" "include : \$(LOCAL_DIR)/$CONFIG_FILE" 644
  fi
  use_condor
  local problems
  problems=$(condor_config_val COLLECTOR_HOST 2>&1) || die "HTCondor cannot read its configuration: $problems"
  log "wrote $OURS; COLLECTOR_HOST is $problems"
}

delete() {
  [ -d "$LOCAL_DIR" ] || return 0
  rm -f "$OURS"
  drop_block "$LOCAL_CONFIG"
}

case "$1" in
  create) create ;;
  delete) delete ;;
  *) die "unknown action '$1'" ;;
esac
