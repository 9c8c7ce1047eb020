#!/usr/bin/env bash
# Step 6: condor_annex's knobs as one managed block in ~/.condor/user_config.
# Values (rendered header): USER_CONFIG_BLOCK
set -euo pipefail

USER_CONFIG="$CONDOR_DIR/user_config"

case "$1" in
  create)
    need_condor_dir
    put_block "$USER_CONFIG" "$USER_CONFIG_BLOCK" 600
    log "wrote the condor-annex block in $USER_CONFIG"
    ;;
  delete) drop_block "$USER_CONFIG" ;;
  *) die "unknown action '$1'" ;;
esac
