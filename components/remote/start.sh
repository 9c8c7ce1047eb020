#!/usr/bin/env bash
# Step 4: start condor_master (or restart it onto new settings), then check it as the guide does.
# Values (rendered header): INSTALL_DIR START_TIMEOUT STOP_TIMEOUT RESTART_REASON
set -euo pipefail

REQUIRED_TYPES="DaemonMaster Collector Negotiator Scheduler Machine"

missing_types() {
  local present=$1 missing="" kind
  for kind in $REQUIRED_TYPES; do
    grep -qx "$kind" <<<"$present" || missing="$missing $kind"
  done
  printf '%s' "${missing# }"
}

master_log_tail() {
  tail -n 5 "$(condor_config_val LOG)/MasterLog" 2>/dev/null | tr '\n' ' ' || true
}

# condor_master forks before it writes its pid file; give it a few seconds.
wait_for_master() {
  local tries=0
  until master_pid; do
    tries=$((tries + 1))
    [ "$tries" -le 20 ] || return 1
    sleep 0.5
  done
}

create() {
  use_condor
  local pid
  if pid=$(master_pid); then
    log "restarting condor_master (pid $pid): $RESTART_REASON"
    condor_restart >&2 || die "condor_restart failed"
  else
    log "starting condor_master"
    condor_master -pidfile "$(master_pid_file)" >&2 || die "condor_master would not start"
    pid=$(wait_for_master) || die "condor_master exited as it started. MasterLog ends: $(master_log_tail)"
  fi

  # condor_master returns before its daemons answer: poll, within a bound.
  local waited=0 present="" missing=$REQUIRED_TYPES
  while :; do
    if present=$(condor_status -any -af MyType 2>&1); then
      missing=$(missing_types "$present")
      [ -z "$missing" ] && break
    fi
    # A master that died will not come up however long we wait.
    kill -0 "$pid" 2>/dev/null \
      || die "condor_master (pid $pid) exited after it started; missing: $missing. MasterLog ends: $(master_log_tail)"
    if [ "$waited" -ge "$START_TIMEOUT" ]; then
      die "HTCondor did not come up within ${START_TIMEOUT}s; missing: ${missing:-unknown}. condor_status said: $present. MasterLog ends: $(master_log_tail)"
    fi
    sleep 2
    waited=$((waited + 2))
    [ $((waited % 10)) -eq 0 ] && log "waiting for HTCondor (${waited}s): missing $missing"
  done

  local queue
  queue=$(condor_q 2>&1) || die "condor_q failed: $queue"
  log "HTCondor is up: $(tr '\n' ' ' <<<"$present")"
}

delete() {
  [ -f "$INSTALL_DIR/condor.sh" ] || return 0
  use_condor
  stop_condor
}

case "$1" in
  create) create ;;
  delete) delete ;;
  *) die "unknown action '$1'" ;;
esac
