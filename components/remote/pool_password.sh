#!/usr/bin/env bash
# Step 3: store the pool password with condor_store_cred; it arrives on stdin and nowhere else.
# Values (rendered header): INSTALL_DIR STORE_CRED_READS_WHOLE_STDIN
set -euo pipefail

create() {
  use_condor
  local password_file output
  password_file=$(condor_config_val SEC_PASSWORD_FILE) || die "SEC_PASSWORD_FILE is not set (configure step missing?)"
  # Write beside the target and rename, so a failure never leaves a truncated password file.
  local staged="$password_file.new"
  rm -f "$staged"
  if [ "$STORE_CRED_READS_WHOLE_STDIN" = yes ]; then
    # 9.0+: `-i -` reads all of stdin as the password (the caller sends no trailing newline).
    output=$(condor_store_cred add -c -f "$staged" -i - 2>&1) || { rm -f "$staged"; die "condor_store_cred failed: $output"; }
  else
    # 8.7.x: without -p, the password prompt reads one line from stdin.
    output=$(condor_store_cred -c add -f "$staged" 2>&1) || { rm -f "$staged"; die "condor_store_cred failed: $output"; }
  fi
  [ -s "$staged" ] || { rm -f "$staged"; die "condor_store_cred wrote no password file: $output"; }
  chmod 600 "$staged"
  mv -f "$staged" "$password_file"
  # A fresh token each time the password is stored, so the start step knows to restart.
  printf 'pool password stored in %s at %s\n' "$password_file" "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)"
}

delete() {
  [ -f "$INSTALL_DIR/condor.sh" ] || return 0
  use_condor
  local password_file
  password_file=$(condor_config_val SEC_PASSWORD_FILE 2>/dev/null) || return 0
  rm -f "$password_file" "$password_file.new"
}

case "$1" in
  create) create ;;
  delete) delete ;;
  *) die "unknown action '$1'" ;;
esac
