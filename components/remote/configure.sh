#!/usr/bin/env bash
# Step 2: our settings (public interface, collector port, how annexes authenticate) in a file of our own.
# Values (rendered header): INSTALL_DIR CONFIG_FILE CONDOR_CONFIG_TEXT INCLUDE_FROM_LOCAL_CONFIG PUBLIC_NAME
# stdout: one line saying whether the pool advertises PUBLIC_NAME (the start step restarts on a change).
set -euo pipefail

LOCAL_DIR="$INSTALL_DIR/local"
OURS="$LOCAL_DIR/$CONFIG_FILE"
# 8.7.x reads only condor_config.local, so it gets one managed include line; 9.0+ reads config.d/.
LOCAL_CONFIG="$LOCAL_DIR/condor_config.local"

# Whether this machine answers at the IPv4 address $1 itself (loopback's whole 127/8 included).
is_own_address() {
  if command -v ip >/dev/null; then
    ip -o route get "$1" 2>/dev/null | grep -q '^local '
  else
    [[ "$1" == 127.* ]] || hostname -I | tr ' ' '\n' | grep -qxF "$1"
  fi
}

# Annex instances call back at PUBLIC_NAME. When that is none of this machine's addresses (a NAT in
# front of it), the daemons must advertise it instead of the address they bind, or an annex can
# reach the collector and nothing else (the schedd, the shadow). Empty when nothing is forwarded.
forwarding_lines() {
  [ -n "$PUBLIC_NAME" ] || return 0
  local public address
  public=$(getent ahostsv4 "$PUBLIC_NAME" | awk '{ print $1 }' | sort -u) \
    || die "publicName $PUBLIC_NAME does not resolve on $(hostname)"
  for address in $public; do
    if is_own_address "$address"; then return 0; fi
  done
  log "publicName $PUBLIC_NAME ($(tr '\n' ' ' <<<"$public")) is not an address of $(hostname): the pool advertises it"
  printf '%s\n' \
    "# $PUBLIC_NAME is none of this machine's addresses (a NAT in front of it): every daemon advertises it," \
    "# and the pool's own daemons, on one private network, keep talking over the machine's addresses." \
    "TCP_FORWARDING_HOST = $PUBLIC_NAME" \
    "PRIVATE_NETWORK_NAME = condor-annex.\$(FULL_HOSTNAME)"
}

create() {
  [ -d "$LOCAL_DIR" ] || die "no HTCondor install at $INSTALL_DIR (run the install step first)"
  local forwarding
  forwarding=$(forwarding_lines)
  printf '%s\n' "$CONDOR_CONFIG_TEXT" ${forwarding:+"$forwarding"} | atomic_write "$OURS" 644
  if [ "$INCLUDE_FROM_LOCAL_CONFIG" = yes ]; then
    put_block "$LOCAL_CONFIG" "include : \$(LOCAL_DIR)/$CONFIG_FILE" 644
  fi
  use_condor
  local problems
  problems=$(condor_config_val COLLECTOR_HOST 2>&1) || die "HTCondor cannot read its configuration: $problems"
  log "wrote $OURS; COLLECTOR_HOST is $problems"
  if [ -n "$forwarding" ]; then echo "advertises $PUBLIC_NAME"; else echo "advertises its own addresses"; fi
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
