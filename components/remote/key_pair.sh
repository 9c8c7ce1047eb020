#!/usr/bin/env bash
# Step: the key pair for debugging annex instances, made here so its private key never leaves
# this machine; only the public key is printed, for EC2 to import.
# Values (rendered header): KEY_PAIR_FILE
set -euo pipefail

PEM="$CONDOR_DIR/$KEY_PAIR_FILE"

create() {
  need_condor_dir
  if held_before "$KEY_PAIR_FILE"; then
    die "$PEM was there before us (from condor_annex -setup?); move it away, or it would be replaced"
  fi
  if [ ! -f "$PEM" ]; then
    local staged
    staged=$(mktemp -d "$CONDOR_DIR/.key-pair.XXXXXX")
    # RSA in PEM form, as EC2 makes them: the published annex images predate Ed25519 support.
    ssh-keygen -q -t rsa -b 4096 -m PEM -N "" -C "$KEY_PAIR_FILE" -f "$staged/key" </dev/null >&2 \
      || { rm -rf "$staged"; die "ssh-keygen could not make the key pair"; }
    chmod 600 "$staged/key"
    mv -f "$staged/key" "$PEM"
    rm -rf "$staged"
    log "made $PEM"
  fi
  ssh-keygen -y -f "$PEM" || die "$PEM is not a private key ssh-keygen can read"
}

delete() {
  held_before "$KEY_PAIR_FILE" || rm -f "$PEM"
}

case "$1" in
  create) create ;;
  delete) delete ;;
  *) die "unknown action '$1'" ;;
esac
