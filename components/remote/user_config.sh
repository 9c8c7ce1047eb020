#!/usr/bin/env bash
# Step 6: condor_annex's knobs as a managed block in ~/.condor/user_config: the setup's, and in a
# second block, made once each region's annex image is built (a build takes half an hour, which
# nothing else waits for), the images' ids.
# Values (rendered header): USER_CONFIG_BLOCK BLOCK_NAME (empty for the setup's block)
set -euo pipefail

USER_CONFIG="$CONDOR_DIR/user_config"

case "$1" in
  create)
    need_condor_dir
    put_block "$USER_CONFIG" "$USER_CONFIG_BLOCK" 600 "$BLOCK_NAME"
    log "wrote the condor-annex${BLOCK_NAME:+ $BLOCK_NAME} block in $USER_CONFIG"
    ;;
  delete) drop_block "$USER_CONFIG" "$BLOCK_NAME" ;;
  *) die "unknown action '$1'" ;;
esac
