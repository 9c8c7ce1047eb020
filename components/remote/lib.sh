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

# The tarball's name for this machine among the PLATFORMS HTCondor builds the release for (x86_64_Ubuntu22,
# x86_64_CentOS7, x86_64_Rocky8, aarch64_AlmaLinux9...): the distribution's own name first, then the
# names the release gives its family (RHEL's rebuilds have carried each of them).
detect_platform() {
  local id version_id major minor arch candidates candidate
  [ -r /etc/os-release ] || die "cannot read /etc/os-release to pick a tarball; set condorTarballUrl"
  # shellcheck disable=SC1091
  id=$(. /etc/os-release && printf '%s' "$ID")
  # shellcheck disable=SC1091
  version_id=$(. /etc/os-release && printf '%s' "${VERSION_ID:-}")
  major=${version_id%%.*}
  minor=${version_id#"$major"}
  minor=${minor#.}
  minor=${minor%%.*}
  arch=$(uname -m)
  case "$arch" in i?86) arch=x86 ;; esac
  local rhel_family="RedHat$major CentOS$major Rocky$major AlmaLinux$major SL$major"
  case "$id" in
    ubuntu) candidates="Ubuntu$major" ;;
    debian) candidates="Debian$major" ;;
    rhel | ol) candidates=$rhel_family ;;
    centos) candidates="CentOS$major $rhel_family" ;;
    rocky) candidates="Rocky$major $rhel_family" ;;
    almalinux) candidates="AlmaLinux$major $rhel_family" ;;
    scientific) candidates="SL$major $rhel_family" ;;
    amzn) candidates="AmazonLinux$major" ;;
    fedora) candidates="Fedora$major" ;;
    opensuse-leap) candidates="openSUSE$major" ;;
    sles) candidates="SLES${major}SP${minor:-0}" ;;
    *) candidates="" ;;
  esac
  for candidate in $candidates; do
    if [[ " $PLATFORMS " == *" ${arch}_$candidate "* ]]; then
      printf '%s_%s' "$arch" "$candidate"
      return
    fi
  done
  die "HTCondor $CONDOR_VERSION is not built for this machine ($id $version_id, $arch); it is built for:" \
    "$PLATFORMS (nmi_tools/nmi-build-platforms at its tag). Choose a condorVersion built for it, or set condorTarballUrl"
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

# Whether a process runs a condor_master (by its command line: the stand-in's is a script).
is_a_master() { grep -q condor_master "/proc/$1/cmdline" 2>/dev/null; }

# The master holding this install's instance lock: every condor_master holds a POSIX write lock on
# $(LOCK)/InstanceLock, or MASTER_INSTANCE_LOCK, for its life (master.cpp lock_or_except, V8_7_3 to
# v25.0.13), however it was started. /proc/locks names the holder by the lock file's inode.
instance_lock_holder() {
  local lock inode pid
  command -v condor_config_val >/dev/null || return 1
  lock=$(condor_config_val MASTER_INSTANCE_LOCK 2>/dev/null) \
    || lock="$(condor_config_val LOCK 2>/dev/null)/InstanceLock" || return 1
  inode=$(stat -c %i "$lock" 2>/dev/null) || return 1
  pid=$(awk -v inode="$inode" '$2 == "POSIX" && $4 == "WRITE" { n = split($6, id, ":"); if (id[n] == inode) { print $5; exit } }' /proc/locks)
  [ -n "$pid" ] && is_a_master "$pid" || return 1
  printf '%s\n' "$pid"
}

# This install's running condor_master: the instance lock's holder (a master the user started by
# hand has no pid file), else the one our pid file names.
master_pid() {
  local pid
  if pid=$(instance_lock_holder); then
    printf '%s\n' "$pid"
    return
  fi
  [ -f "$(master_pid_file)" ] || return 1
  pid=$(cat "$(master_pid_file)")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && is_a_master "$pid" || return 1
  printf '%s\n' "$pid"
}

# One at a time: the keeper, the start step and destroy's stop each start or stop condor_master
# only while they hold this lock (the keeper skips its turn; the steps wait up to $1 seconds).
hold_control_lock() {
  local wait_seconds=$1
  exec 9>"$INSTALL_DIR/local/.condor-annex-keeper.lock"
  if [ "$wait_seconds" -eq 0 ]; then
    flock -n 9
  else
    flock -w "$wait_seconds" 9 \
      || die "another start or stop of HTCondor (the keeper, or another pulumi up) held on for ${wait_seconds}s"
  fi
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
