#!/usr/bin/env bash
# Step 3: store the pool password with condor_store_cred; it arrives on stdin and nowhere else.
# stdin: the password and one newline.
# Values (rendered header): INSTALL_DIR
set -euo pipefail

create() {
  use_condor
  local password_file output
  password_file=$(condor_config_val SEC_PASSWORD_FILE) || die "SEC_PASSWORD_FILE is not set (configure step missing?)"
  # Write beside the target and rename, so a failure never leaves a truncated password file.
  local staged="$password_file.new"
  rm -f "$staged"
  # The prompt form is the one every version reads the same way: up to the newline, from a stdin
  # that is not a terminal. `-i -` is ignored with -f up to 10.7, and from 10.8 it would keep the
  # newline as part of the password.
  output=$(condor_store_cred -c add -f "$staged" 2>&1) || { rm -f "$staged"; die "condor_store_cred failed: $output"; }
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
