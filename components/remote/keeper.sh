#!/usr/bin/env bash
# Not a step: the file the autostart step writes into the install, which the user's crontab runs at
# boot and every few minutes. It starts condor_master unless it is running, and is silent otherwise.
# Values (rendered header): INSTALL_DIR STOP_TIMEOUT
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

keep_running() {
  use_condor
  # One at a time: at boot the @reboot line and the periodic one can fire together.
  exec 9>"$INSTALL_DIR/local/.condor-annex-keeper.lock"
  flock -n 9 || return 0
  master_pid >/dev/null && return 0
  log "condor_master is not running; starting it"
  stop_daemons_left_behind
  condor_master -pidfile "$(master_pid_file)" || die "condor_master would not start"
  log "condor_master started"
}

keep_running
