#!/usr/bin/env bash
# Shared helpers, prepended to every step script (after its rendered header of values).
set -euo pipefail
umask 077

log() { printf '%s: %s\n' "$STEP" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "$STEP" "$*" >&2; exit 1; }

# Replace a file as a whole or not at all: write beside it, then rename over it.
atomic_write() {
  local target=$1 mode=$2 staged
  staged=$(mktemp "$(dirname "$target")/.$(basename "$target").XXXXXX")
  if ! cat >"$staged" || ! chmod "$mode" "$staged" || ! mv -f "$staged" "$target"; then
    rm -f "$staged"
    die "could not write $target (is the disk full?)"
  fi
}

# A managed block's markers; $1 names a second block of a file (empty: the first, unnamed one).
begin_mark() { printf '# BEGIN condor-annex%s (managed by Pulumi: edits inside this block are overwritten)' "${1:+ $1}"; }
end_mark() { printf '# END condor-annex%s' "${1:+ $1}"; }
# Inside our block when the file did not exist before us: only then may destroy remove the file.
CREATED_LINE="# condor-annex created this file; destroy removes it if nothing else is left in it"

# Print a file without our managed block ($2 names it), so the user's own lines pass through untouched.
without_block() {
  [ -f "$1" ] || return 0
  awk -v begin="$(begin_mark "${2:-}")" -v end="$(end_mark "${2:-}")" '
    $0 == begin { skipping = 1; next }
    $0 == end && skipping { skipping = 0; next }
    !skipping { print }
  ' "$1"
}

# Replace (never append a second) our block ($4 names a second one, always put after the first) in
# a file the user may also edit; a file the user already had keeps its mode.
put_block() {
  local target=$1 block=$2 mode=$3 name=${4:-} created=""
  if [ -z "$name" ] && { [ ! -f "$target" ] || grep -qxF "$CREATED_LINE" "$target"; }; then
    created="$CREATED_LINE"$'\n'
  fi
  [ -f "$target" ] && mode=$(stat -c %a "$target")
  { without_block "$target" "$name"; printf '%s\n%s%s\n%s\n' "$(begin_mark "$name")" "$created" "$block" "$(end_mark "$name")"; } \
    | atomic_write "$target" "$mode"
}

# Remove our block ($2 names a second one, always removed before the first). A file we created goes
# when nothing else is left in it; a file the user (or an installer) had goes back to what it held,
# even when that was nothing.
drop_block() {
  local target=$1 name=${2:-} rest
  [ -f "$target" ] || return 0
  rest=$(without_block "$target" "$name")
  if grep -qxF "$CREATED_LINE" "$target" && [ -z "$(tr -d '[:space:]' <<<"$rest")" ]; then
    rm -f "$target"
  else
    without_block "$target" "$name" | atomic_write "$target" "$(stat -c %a "$target")"
  fi
}

CONDOR_DIR="$HOME/.condor"
# The names ~/.condor held before our first step, one a line (the condor-dir step writes it).
CONDOR_DIR_RECORD="$CONDOR_DIR/.condor-annex-before"

# Whether ~/.condor held this name before our first step: such a file is the user's, never ours.
held_before() { grep -qxF "$1" "$CONDOR_DIR_RECORD" 2>/dev/null; }

need_condor_dir() { [ -d "$CONDOR_DIR" ] || die "$CONDOR_DIR is missing (the condor-dir step makes it)"; }

use_condor() {
  [ -f "$INSTALL_DIR/condor.sh" ] || die "no HTCondor install at $INSTALL_DIR (condor.sh is missing)"
  # shellcheck disable=SC1091
  . "$INSTALL_DIR/condor.sh"
}

# The tarball names its platform like x86_64_Ubuntu22 or x86_64_AlmaLinux9 (x86_64_RedHat7 for 8.x).
detect_platform() {
  local id version_id major
  [ -r /etc/os-release ] || die "cannot read /etc/os-release to pick a tarball; set condorTarballUrl"
  # shellcheck disable=SC1091
  id=$(. /etc/os-release && printf '%s' "$ID")
  # shellcheck disable=SC1091
  version_id=$(. /etc/os-release && printf '%s' "${VERSION_ID:-}")
  major=${version_id%%.*}
  case "$id" in
    ubuntu) printf '%s_Ubuntu%s' "$(uname -m)" "$major" ;;
    debian) printf '%s_Debian%s' "$(uname -m)" "$major" ;;
    rhel | centos | rocky | almalinux | ol)
      if [ "$INSTALLER" = condor_install ]; then
        printf '%s_RedHat%s' "$(uname -m)" "$major"
      else
        printf '%s_AlmaLinux%s' "$(uname -m)" "$major"
      fi
      ;;
    amzn) printf '%s_AmazonLinux%s' "$(uname -m)" "$major" ;;
    *) die "no HTCondor tarball is published for distribution '$id'; set condorTarballUrl" ;;
  esac
}

# TARBALL_URL with {platform} filled in for this machine.
tarball_url() {
  local url=$TARBALL_URL
  if [[ "$url" == *"{platform}"* ]]; then
    url=${url//\{platform\}/$(detect_platform)}
  fi
  printf '%s' "$url"
}

master_pid_file() { printf '%s/local/condor_master.pid' "$INSTALL_DIR"; }

master_pid() {
  local pid
  [ -f "$(master_pid_file)" ] || return 1
  pid=$(cat "$(master_pid_file)")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q condor_master "/proc/$pid/cmdline" 2>/dev/null || return 1
  printf '%s\n' "$pid"
}

# Wait up to STOP_TIMEOUT for the processes $2... (told to stop) to end, saying so every 10s; then
# SIGKILL what is left. $1 names them in the log.
wait_or_kill() {
  local what=$1 waited=0
  shift
  while kill -0 "$@" 2>/dev/null; do
    if [ "$waited" -ge "$STOP_TIMEOUT" ]; then
      log "$what did not stop in ${STOP_TIMEOUT}s; sending SIGKILL"
      kill -9 "$@" 2>/dev/null || true
      break
    fi
    sleep 1
    waited=$((waited + 1))
    [ $((waited % 10)) -ne 0 ] || log "waiting for $what to stop (${waited}s)"
  done
}

stop_condor() {
  local pid
  pid=$(master_pid) || return 0
  log "stopping condor_master (pid $pid)"
  condor_off -master >&2 || kill "$pid" 2>/dev/null || true
  wait_or_kill "condor_master (pid $pid)" "$pid"
  rm -f "$(master_pid_file)"
}

# HTCondor's personal install refuses root, and so does every step: the files must be the user's.
[ "$(id -u)" -ne 0 ] || die "runs as root; run it as the (non-root) account that owns the personal HTCondor"
