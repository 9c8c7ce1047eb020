#!/usr/bin/env bash
# Step 1: download, verify and install a personal HTCondor under $INSTALL_DIR.
# Values (rendered header): INSTALL_DIR CONDOR_VERSION TARBALL_URL TARBALL_SHA256 INSTALLER PLATFORMS STOP_TIMEOUT
set -euo pipefail

OWNED_MARK="$INSTALL_DIR/.condor-annex-owned"
INSTALLED_MARK="$INSTALL_DIR/.condor-annex-installed"
# The directories above INSTALL_DIR that did not exist before us, deepest first.
PARENTS_MARK="$INSTALL_DIR/.condor-annex-parents"
EXPECTED="$CONDOR_VERSION $TARBALL_URL ${TARBALL_SHA256:-unpinned}"
STAGING_PREFIX="$(dirname "$INSTALL_DIR")/.condor-annex-download.$(basename "$INSTALL_DIR")"

# Continue a partial target (curl -C -, wget --continue); an absent one is fetched from the start.
fetch() {
  local url=$1 target=$2 errors=$3
  if command -v curl >/dev/null; then
    curl --fail --silent --show-error --location --retry 3 --connect-timeout 30 -C - -o "$target" "$url" 2>"$errors"
  elif command -v wget >/dev/null; then
    wget --quiet --tries=3 --timeout=30 --continue -O "$target" "$url" 2>"$errors"
  else
    die "neither curl nor wget is installed on $(hostname)"
  fi
}

mebibytes() { awk -v bytes="$(stat -c %s "$1" 2>/dev/null || echo 0)" 'BEGIN { printf "%.1f MiB", bytes / 1048576 }'; }

# fetch, saying every 10s how much has arrived: a download of a few hundred MiB takes minutes.
fetch_showing_progress() {
  local target=$2 started=$SECONDS fetcher status=0
  fetch "$@" &
  fetcher=$!
  while kill -0 "$fetcher" 2>/dev/null; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      kill -0 "$fetcher" 2>/dev/null || break 2
      sleep 1
    done
    log "downloading: $(mebibytes "$target") so far ($((SECONDS - started))s)"
  done
  wait "$fetcher" || status=$?
  [ "$status" -ne 0 ] || log "downloaded $(mebibytes "$target") in $((SECONDS - started))s"
  return "$status"
}

download() {
  local url=$1 target=$2 errors
  errors=$(dirname "$target")/download.err
  if [ -s "$target" ]; then
    log "resuming the download of $url cut off at $(stat -c %s "$target") bytes"
    fetch_showing_progress "$url" "$target" "$errors" && return 0
    log "could not resume ($(tail -n 1 "$errors")); downloading from the start"
    rm -f "$target"
  fi
  fetch_showing_progress "$url" "$target" "$errors" || die "download of $url failed: $(tail -n 1 "$errors")"
}

# A run whose session died (dropped link, reboot) could not clean up after itself.
remove_stale_downloads() {
  local keep=${1:-} stale
  for stale in "$STAGING_PREFIX".*; do
    [ "$stale" != "$keep" ] || continue
    if [ -d "$stale" ] && [ -O "$stale" ]; then
      log "removing $stale, left by a run that was cut off"
      rm -rf "$stale"
    fi
  done
}

# The longest download of url that a cut-off run left, if any: worth continuing, not repeating.
cut_off_download() {
  local url=$1 candidate best="" best_size=0 size
  for candidate in "$STAGING_PREFIX".*/condor.tar.gz; do
    [ -f "$candidate" ] && [ -O "$candidate" ] || continue
    [ "$(cat "$(dirname "$candidate")/url" 2>/dev/null)" = "$url" ] || continue
    size=$(stat -c %s "$candidate")
    if [ "$size" -gt "$best_size" ]; then
      best=$candidate
      best_size=$size
    fi
  done
  printf '%s' "$best"
}

# Make INSTALL_DIR's parents, adding to PARENTS the ones that were missing.
make_parents() {
  local dir
  dir=$(dirname "$INSTALL_DIR")
  while [ ! -d "$dir" ]; do
    PARENTS+=("$dir")
    dir=$(dirname "$dir")
  done
  mkdir -p "$(dirname "$INSTALL_DIR")"
}

# Remove the given parents, deepest first, while they are empty.
remove_parents() {
  local dir
  for dir in "$@"; do
    rmdir "$dir" 2>/dev/null || return 0
  done
}

remove_install() {
  [ -d "$INSTALL_DIR" ] || return 0
  [ -f "$OWNED_MARK" ] || die "refusing to remove $INSTALL_DIR: this program did not create it"
  if [ -f "$INSTALL_DIR/condor.sh" ]; then
    use_condor
    hold_control_lock "$STOP_TIMEOUT"
    stop_condor
    local lock
    lock=$(condor_config_val LOCK 2>/dev/null || true)
    # make-personal-from-tarball puts LOCK in a mktemp directory outside the install.
    case "$lock" in
      /tmp/*) if [ -d "$lock" ] && [ -O "$lock" ]; then rm -rf "$lock"; fi ;;
    esac
  fi
  rm -rf "$INSTALL_DIR"
}

create() {
  if [ -f "$INSTALLED_MARK" ] && [ "$(cat "$INSTALLED_MARK")" = "$EXPECTED" ]; then
    log "HTCondor $CONDOR_VERSION is already installed in $INSTALL_DIR"
    return 0
  fi
  if [ -e "$INSTALL_DIR" ] && [ ! -f "$OWNED_MARK" ]; then
    die "$INSTALL_DIR already exists and was not created by this program; set installDir to a new directory"
  fi
  # A different version, or a run that stopped half-way: start from nothing but the parents.
  PARENTS=()
  if [ -f "$PARENTS_MARK" ]; then mapfile -t PARENTS <"$PARENTS_MARK"; fi
  remove_install

  local url actual
  url=$(tarball_url)
  make_parents
  local partial
  partial=$(cut_off_download "$url")
  STAGING=$(mktemp -d "$STAGING_PREFIX.XXXXXX")
  # On any failure nothing of ours stays: the download, and parents made for an install that failed.
  trap 'rm -rf "$STAGING"; [ -d "$INSTALL_DIR" ] || remove_parents "${PARENTS[@]}"' EXIT
  printf '%s\n' "$url" >"$STAGING/url"
  if [ -n "$partial" ]; then mv "$partial" "$STAGING/condor.tar.gz"; fi
  remove_stale_downloads "$STAGING"

  log "downloading $url"
  download "$url" "$STAGING/condor.tar.gz"
  actual=$(sha256sum "$STAGING/condor.tar.gz" | cut -d' ' -f1)
  if [ -n "$TARBALL_SHA256" ]; then
    [ "$actual" = "$TARBALL_SHA256" ] \
      || die "checksum mismatch for $url: expected $TARBALL_SHA256 (condorTarballSha256), got $actual"
    log "sha256 verified: $actual"
  else
    log "WARNING: condorTarballSha256 is not set, so the tarball is not verified; its sha256 is $actual"
  fi

  mkdir "$STAGING/release"
  touch "$STAGING/release/.condor-annex-owned"
  if [ "$INSTALLER" = make-personal-from-tarball ]; then
    tar -xzf "$STAGING/condor.tar.gz" -C "$STAGING/release" --strip-components=1 \
      || die "$url is not a readable HTCondor tarball"
  else
    tar -xzf "$STAGING/condor.tar.gz" -C "$STAGING/release" || die "$url is not a readable HTCondor tarball"
  fi
  # From here on the directory is ours to remove if anything fails.
  mv "$STAGING/release" "$INSTALL_DIR"
  if [ "${#PARENTS[@]}" -gt 0 ]; then printf '%s\n' "${PARENTS[@]}" >"$PARENTS_MARK"; fi

  local output
  log "installing a personal HTCondor with $INSTALLER"
  if [ "$INSTALLER" = make-personal-from-tarball ]; then
    # It takes the current directory as RELEASE_DIR.
    output=$(cd "$INSTALL_DIR" && ./bin/make-personal-from-tarball 2>&1) || {
      rm -rf "$INSTALL_DIR"
      die "make-personal-from-tarball failed: $output"
    }
  else
    local release
    release=$(find "$INSTALL_DIR" -mindepth 1 -maxdepth 1 -type d -name 'condor-*' | head -n 1)
    [ -n "$release" ] || { rm -rf "$INSTALL_DIR"; die "$url holds no condor-* release directory"; }
    mkdir -p "$INSTALL_DIR/local"
    output=$(cd "$INSTALL_DIR" && "$release/condor_install" --prefix="$INSTALL_DIR" \
      --local-dir="$INSTALL_DIR/local" --make-personal-condor 2>&1) || {
      rm -rf "$INSTALL_DIR"
      die "condor_install failed: $output"
    }
  fi
  printf '%s\n' "$EXPECTED" | atomic_write "$INSTALLED_MARK" 600
  log "installed HTCondor $CONDOR_VERSION in $INSTALL_DIR"
}

case "$1" in
  create) create ;;
  delete)
    PARENTS=()
    if [ -f "$PARENTS_MARK" ]; then mapfile -t PARENTS <"$PARENTS_MARK"; fi
    remove_stale_downloads
    remove_install
    remove_parents "${PARENTS[@]}"
    ;;
  *) die "unknown action '$1'" ;;
esac
