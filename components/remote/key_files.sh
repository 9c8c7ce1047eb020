#!/usr/bin/env bash
# Step 5: the annex user's access key in ~/.condor, mode 0600.
# stdin: line 1 the access key id, line 2 the secret key.
# Values (rendered header): ACCESS_KEY_FILE SECRET_KEY_FILE
set -euo pipefail

create() {
  need_condor_dir
  local access_key secret_key
  IFS= read -r access_key || die "stdin ended before the access key id"
  IFS= read -r secret_key || die "stdin ended before the secret key"
  [ -n "$access_key" ] && [ -n "$secret_key" ] || die "empty access key from the AWS side"
  printf '%s\n' "$access_key" | atomic_write "$CONDOR_DIR/$ACCESS_KEY_FILE" 600
  printf '%s\n' "$secret_key" | atomic_write "$CONDOR_DIR/$SECRET_KEY_FILE" 600
  log "wrote $ACCESS_KEY_FILE and $SECRET_KEY_FILE in $CONDOR_DIR"
}

delete() {
  rm -f "$CONDOR_DIR/$ACCESS_KEY_FILE" "$CONDOR_DIR/$SECRET_KEY_FILE"
}

case "$1" in
  create) create ;;
  delete) delete ;;
  *) die "unknown action '$1'" ;;
esac
