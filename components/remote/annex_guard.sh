#!/usr/bin/env bash
# The last step made and the first undone: before destroy removes anything, it asks AWS (through
# the user's own condor_annex and key) for annexes still running in every region, whose instances
# the lease functions and the security group about to go would leave running with no lease, or
# stop the destroy part-way (AWS refuses to delete a group an instance uses).
# ON_DESTROY: refuse (name each annex and the command that ends it, delete nothing), end (end each
# annex's lease now and wait for its instances to go), or leave (go on, saying what keeps running).
# Values (rendered header): INSTALL_DIR ANNEX_TOOL REGIONS REGION_OPTION ON_DESTROY END_WAIT
set -euo pipefail

# Ending a lease: its rule fires every 5 minutes and finds it expired (a lease shorter than 4 s).
END_DURATION_HOURS=0.001

annex_tool() {
  case "$ANNEX_TOOL" in
    libexec) printf '%s/condor_annex' "$(condor_config_val LIBEXEC)" ;;
    *) printf '%s' "$ANNEX_TOOL" ;;
  esac
}

# condor_annex's own words for one region, with the region option where the version has one.
annex_in() {
  local region=$1
  shift
  if [ "$REGION_OPTION" = yes ]; then
    "$(annex_tool)" -aws-region "$region" "$@" 2>&1
  else
    "$(annex_tool)" "$@" 2>&1
  fi
}

# "<annex> <instances not terminated>" for each annex with instances in the region. condor_annex
# -status -classads prints one ad an annex, NumInstances<State> for each state it saw.
live_annexes() {
  local region=$1 output
  output=$(annex_in "$region" -status -classads) || die "condor_annex -status failed in $region: $output"
  if ! grep -q '^AnnexID = ' <<<"$output"; then
    grep -q 'Found no instances in any annex' <<<"$output" && return 0
    die "condor_annex could not say which annexes run in $region, so destroy goes no further: $output"
  fi
  awk -F' = ' '
    function flush() { if (annex != "" && total - ended > 0) print annex, total - ended; annex = ""; total = ended = 0 }
    /^$/ { flush(); next }
    $1 == "AnnexID" { gsub(/"/, "", $2); annex = $2 }
    $1 == "TotalInstances" { total = $2 }
    $1 == "NumInstancesTerminated" || $1 == "NumInstancesShuttingDown" { ended += $2 }
    END { flush() }
  ' <<<"$output"
}

# Every region's live annexes, one "<region> <annex> <instances>" a line; fails, saying why, when
# a region cannot be asked (callers exit then: an unknown answer is never "none").
all_live_annexes() {
  local region found
  for region in $REGIONS; do
    found=$(live_annexes "$region") || return 1
    [ -z "$found" ] || awk -v region="$region" '{ print region, $0 }' <<<"$found"
  done
}

end_command() {
  local region=$1 annex=$2 tool=condor_annex
  [ "$ANNEX_TOOL" = libexec ] && tool="$INSTALL_DIR/libexec/condor_annex"
  if [ "$REGION_OPTION" = yes ]; then
    printf '%s -aws-region %s -annex-name %s -duration %s' "$tool" "$region" "$annex" "$END_DURATION_HOURS"
  else
    printf '%s -annex-name %s -duration %s' "$tool" "$annex" "$END_DURATION_HOURS"
  fi
}

refuse() {
  local live=$1 region annex count message="annexes still run, so destroy removes nothing:"
  while read -r region annex count; do
    message+=$'\n'"  annex $annex in $region: $count instance(s); end it with: $(end_command "$region" "$annex")"
  done <<<"$live"
  message+=$'\n'"Its lease function then ends its instances within 5 minutes; run pulumi destroy again after"
  message+=" that. Or let destroy end them: pulumi config set annexesOnDestroy end && pulumi up && pulumi destroy"
  die "$message"
}

end_all() {
  local live=$1 region annex count waited=0 output
  while read -r region annex count; do
    log "ending annex $annex in $region ($count instance(s)): its lease ends now"
    output=$(annex_in "$region" -annex-name "$annex" -duration "$END_DURATION_HOURS") \
      || die "could not end annex $annex in $region: $output"
  done <<<"$live"
  while :; do
    live=$(all_live_annexes) || exit 1
    [ -n "$live" ] || break
    if [ "$waited" -ge "$END_WAIT" ]; then
      die "annexes still run ${END_WAIT}s after their leases ended, so destroy removes nothing: $(tr '\n' ';' <<<"$live")"
    fi
    sleep 10
    waited=$((waited + 10))
    log "waiting for the lease functions to end $(wc -l <<<"$live") annex(es) (${waited}s): $(tr '\n' ';' <<<"$live")"
  done
  log "no annex runs any more"
}

delete() {
  if [ ! -f "$INSTALL_DIR/condor.sh" ]; then
    log "no HTCondor install at $INSTALL_DIR to ask about annexes"
    return 0
  fi
  use_condor
  local live
  live=$(all_live_annexes) || exit 1
  if [ -z "$live" ]; then
    log "no annex runs in $REGIONS"
    return 0
  fi
  case "$ON_DESTROY" in
    refuse) refuse "$live" ;;
    end) end_all "$live" ;;
    leave) log "WARNING: destroying while annexes run, which will run with no lease: $(tr '\n' ';' <<<"$live")" ;;
    *) die "unknown annexesOnDestroy '$ON_DESTROY'" ;;
  esac
}

case "$1" in
  create) log "destroy will $ON_DESTROY annexes still running in $REGIONS" ;;
  delete) delete ;;
  *) die "unknown action '$1'" ;;
esac
