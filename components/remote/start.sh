#!/usr/bin/env bash
# Step 4: start condor_master (or restart it onto new settings), then check it as the guide does:
# the daemons answer, and a job runs to completion.
# Values (rendered header): INSTALL_DIR START_TIMEOUT STOP_TIMEOUT JOB_TIMEOUT RESTART_REASON ANNEX_COLLECTOR_KNOB
set -euo pipefail

REQUIRED_TYPES="DaemonMaster Collector Negotiator Scheduler Machine"

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

# The required daemon types with no ad from a daemon started at or after $1 (epoch seconds): a
# collector that has not restarted yet still answers with the ads of the daemons before. The
# collector's own ad carries no DaemonStartTime (24.0.23); the others can only reach a new one.
missing_fresh_types() {
  local since=$1 ads=$2 missing="" kind
  for kind in $REQUIRED_TYPES; do
    awk -v kind="$kind" -v since="$since" '
      $1 == kind && (kind == "Collector" || ($2 ~ /^[0-9]+$/ && $2 >= since)) { found = 1 }
      END { exit !found }' <<<"$ads" || missing="$missing $kind"
  done
  printf '%s' "${missing# }"
}

# Wait, within START_TIMEOUT, until every daemon started after $1 has reported and the schedd answers.
wait_for_daemons() {
  local since=$1 pid=$2 waited=0 ads="" missing=$REQUIRED_TYPES queue=""
  while :; do
    if ads=$(condor_status -any -af MyType DaemonStartTime 2>&1); then
      missing=$(missing_fresh_types "$since" "$ads")
      if [ -z "$missing" ]; then
        queue=$(condor_q 2>&1) && return 0
        missing="a schedd that answers condor_q ($queue)"
      fi
    fi
    # A master that died will not come up however long we wait.
    kill -0 "$pid" 2>/dev/null \
      || die "condor_master (pid $pid) exited after it started; missing: $missing. MasterLog ends: $(master_log_tail)"
    if [ "$waited" -ge "$START_TIMEOUT" ]; then
      die "HTCondor did not come up within ${START_TIMEOUT}s; missing: ${missing:-unknown}. condor_status said: $ads. MasterLog ends: $(master_log_tail)"
    fi
    sleep 2
    waited=$((waited + 2))
    [ $((waited % 10)) -eq 0 ] && log "waiting for HTCondor (${waited}s): missing $missing"
  done
}

# Why the collector at $1 (host:port, maybe ?sock=...) does not answer from here, in the words of a
# TCP connection to it; $2 is what condor_status said.
why_unreachable() {
  local address=${1%%\?*} said=$2 host port probe status=0
  host=${address%:*}
  port=${address##*:}
  getent hosts "$host" >/dev/null || { echo "$host does not resolve on $(hostname)"; return; }
  # shellcheck disable=SC2016 # $1 and $2 are the inner shell's arguments
  probe=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2"' probe "$host" "$port" 2>&1) || status=$?
  if [ "$status" -eq 0 ]; then
    echo "a TCP connection to $host:$port opens, but HTCondor's query fails: $said"
  elif [ "$status" -eq 124 ]; then
    echo "no answer from $host:$port within 5s: a firewall drops the port, or $host is a NAT in front of this" \
      "machine that does not send this machine's own connections back to it (no hairpin NAT), and" \
      "condor_annex on this machine dials it as the annex instances do"
  else
    echo "$host:$port refuses the connection (${probe##*: }): nothing listens there; if $host is a NAT in" \
      "front of this machine, forward port $port to it"
  fi
}

# The address condor_annex dials and gives every annex instance, as it reads its configuration (the
# ANNEX subsystem): the collector (COLLECTOR_HOST) up to 24.0, the AP collector (ANNEX_COLLECTOR)
# from 24.11. It must answer here too: condor_annex asks it from this machine.
wait_for_annex_path() {
  local address output waited=0
  address=$(condor_config_val -subsystem ANNEX "$ANNEX_COLLECTOR_KNOB" 2>&1) \
    || die "HTCondor names no $ANNEX_COLLECTOR_KNOB for condor_annex: $address"
  until output=$(condor_status -pool "$address" -collector -af Name 2>&1) && [ -n "$output" ]; do
    if [ "$waited" -ge "$START_TIMEOUT" ]; then
      die "condor_annex and annex instances reach this pool at $address ($ANNEX_COLLECTOR_KNOB), which does not" \
        "answer from here within ${START_TIMEOUT}s: $(why_unreachable "$address" "$output")"
    fi
    sleep 2
    waited=$((waited + 2))
    [ $((waited % 10)) -eq 0 ] && log "waiting for the collector annexes reach, at $address (${waited}s)"
  done
  log "the collector annexes reach answers at $address"
}

# The guide's own test: a job that runs to completion proves negotiator, schedd and startd work
# together under the pool-password settings. Nothing of it stays in the queue.
run_test_job() {
  local work cluster output waited=0 status=""
  work=$(mktemp -d "$INSTALL_DIR/local/.test-job.XXXXXX")
  printf 'executable = /bin/true\nuniverse = vanilla\nlog = %s/job.log\nqueue\n' "$work" >"$work/job.sub"
  output=$(cd "$work" && condor_submit job.sub 2>&1) || { rm -rf "$work"; die "condor_submit failed: $output"; }
  cluster=$(sed -n 's/.*submitted to cluster \([0-9][0-9]*\)\..*/\1/p' <<<"$output")
  [ -n "$cluster" ] || { rm -rf "$work"; die "condor_submit said no cluster: $output"; }
  log "submitted test job $cluster.0 (/bin/true); waiting up to ${JOB_TIMEOUT}s for it to complete"
  until status=$(condor_history "$cluster" -limit 1 -af JobStatus 2>/dev/null) && [ "$status" = 4 ]; do
    # Asked again every 10s: a reschedule the negotiator never got would leave the job for its
    # next cycle, NEGOTIATOR_INTERVAL (60s) later.
    if [ $((waited % 10)) -eq 0 ]; then condor_reschedule >/dev/null 2>&1 || true; fi
    if [ "$waited" -ge "$JOB_TIMEOUT" ]; then
      output=$(condor_q -better-analyze "$cluster" 2>&1 || true)
      condor_rm "$cluster" >/dev/null 2>&1 || true
      rm -rf "$work"
      die "the test job $cluster.0 did not complete within ${JOB_TIMEOUT}s. condor_q -better-analyze says: $output"
    fi
    sleep 1
    waited=$((waited + 1))
    [ $((waited % 10)) -eq 0 ] && log "waiting for test job $cluster.0 (${waited}s)"
  done
  rm -rf "$work"
  log "test job $cluster.0 completed in about ${waited}s"
}

create() {
  use_condor
  local pid since
  hold_control_lock "$START_TIMEOUT"
  since=$(date +%s)
  if pid=$(master_pid); then
    log "restarting condor_master (pid $pid): $RESTART_REASON"
    condor_restart >&2 || die "condor_restart failed"
  else
    log "starting condor_master"
    condor_master -pidfile "$(master_pid_file)" >&2 9>&- || die "condor_master would not start"
    pid=$(wait_for_master) || die "condor_master exited as it started. MasterLog ends: $(master_log_tail)"
  fi
  wait_for_daemons "$since" "$pid"
  log "HTCondor is up: every daemon reported after $(date -u -d "@$since" +%H:%M:%S) and the schedd answers"
  wait_for_annex_path
  run_test_job
}

delete() {
  [ -f "$INSTALL_DIR/condor.sh" ] || return 0
  use_condor
  hold_control_lock "$STOP_TIMEOUT"
  stop_condor
}

case "$1" in
  create) create ;;
  delete) delete ;;
  *) die "unknown action '$1'" ;;
esac
