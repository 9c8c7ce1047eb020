#!/usr/bin/env bash
# Not a step: the file the autostart step writes into the install, which the user's crontab runs at
# boot (`boot`) and every few minutes. It starts condor_master unless one runs, however it was
# started, or the user keeps HTCondor stopped; it is silent otherwise.
# Values (rendered header): INSTALL_DIR STOP_TIMEOUT KEEP_STOPPED BOOT_NETWORK_WAIT
set -euo pipefail

# Whether a process runs a program of this install's daemons (sbin/, libexec/): its executable, or
# for a script its second word, the script the interpreter runs.
runs_a_daemon_of_this_install() {
  local program
  for program in "$(readlink "/proc/$1/exe" 2>/dev/null)" "$({ tr '\0' '\n' <"/proc/$1/cmdline"; } 2>/dev/null | sed -n 2p)"; do
    case "$program" in "$INSTALL_DIR"/sbin/* | "$INSTALL_DIR"/libexec/*) return 0 ;; esac
  done
  return 1
}

# A master that died (killed, out of memory) leaves its daemons running, and they hold the
# collector's port: a new master's daemons cannot start beside them (seen on a real 25.0.13).
stop_daemons_left_behind() {
  local pid left=()
  for pid in $(pgrep -u "$(id -u)" .); do
    runs_a_daemon_of_this_install "$pid" && left+=("$pid")
  done
  [ "${#left[@]}" -gt 0 ] || return 0
  log "stopping the daemons a dead condor_master left running: ${left[*]}"
  kill "${left[@]}" 2>/dev/null || true
  wait_or_kill "the daemons ${left[*]}" "${left[@]}"
}

# Whether this machine has a default route yet (IPv4, or IPv6 off loopback).
network_is_up() {
  awk '$2 == "00000000" { up = 1 } END { exit !up }' /proc/net/route 2>/dev/null \
    || awk '$1 == "00000000000000000000000000000000" && $2 == "00" && $10 != "lo" { up = 1 } END { exit !up }' \
      /proc/net/ipv6_route 2>/dev/null
}

# At boot cron can start before the network: a master started then would find no address but
# loopback's. Wait for a default route, BOOT_NETWORK_WAIT seconds at most, then start anyway.
wait_for_network() {
  local waited=0
  until network_is_up; do
    if [ "$waited" -ge "$BOOT_NETWORK_WAIT" ]; then
      log "no default route after ${BOOT_NETWORK_WAIT}s; starting condor_master anyway"
      return
    fi
    [ $((waited % 10)) -ne 0 ] || log "waiting for the network before starting condor_master (${waited}s)"
    sleep 1
    waited=$((waited + 1))
  done
}

keep_running() {
  local when=${1:-}
  use_condor
  if [ -e "$KEEP_STOPPED" ]; then
    return 0
  fi
  # At boot the @reboot line and the periodic one can fire together; a pulumi up may be starting or
  # stopping it: then this turn is theirs.
  hold_control_lock 0 || return 0
  master_pid >/dev/null && return 0
  [ "$when" != boot ] || wait_for_network
  log "condor_master is not running; starting it"
  stop_daemons_left_behind
  # Not holding the lock in the master: its daemons would keep it after it died.
  condor_master -pidfile "$(master_pid_file)" 9>&- || die "condor_master would not start"
  log "condor_master started"
}

keep_running "$@"
