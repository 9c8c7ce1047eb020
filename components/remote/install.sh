#!/usr/bin/env bash
# Step 1: download, verify and install a personal HTCondor under $INSTALL_DIR.
# Values (rendered header): INSTALL_DIR CONDOR_VERSION TARBALL_URL TARBALL_SHA256 INSTALLER STOP_TIMEOUT
set -euo pipefail

OWNED_MARK="$INSTALL_DIR/.condor-annex-owned"
INSTALLED_MARK="$INSTALL_DIR/.condor-annex-installed"
EXPECTED="$CONDOR_VERSION $TARBALL_URL ${TARBALL_SHA256:-unpinned}"

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

download() {
  local url=$1 target=$2 errors
  errors=$(dirname "$target")/download.err
  if command -v curl >/dev/null; then
    curl --fail --silent --show-error --location --retry 3 --connect-timeout 30 -o "$target" "$url" 2>"$errors" \
      || die "download of $url failed: $(tail -n 1 "$errors")"
  elif command -v wget >/dev/null; then
    wget --quiet --tries=3 --timeout=30 -O "$target" "$url" 2>"$errors" \
      || die "download of $url failed: $(tail -n 1 "$errors")"
  else
    die "neither curl nor wget is installed on $(hostname)"
  fi
}

remove_install() {
  [ -d "$INSTALL_DIR" ] || return 0
  [ -f "$OWNED_MARK" ] || die "refusing to remove $INSTALL_DIR: this program did not create it"
  if [ -f "$INSTALL_DIR/condor.sh" ]; then
    use_condor
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
  # A different version, or a run that stopped half-way: start from nothing.
  remove_install

  local url actual
  url=$TARBALL_URL
  if [[ "$url" == *"{platform}"* ]]; then
    url=${url//\{platform\}/$(detect_platform)}
  fi
  mkdir -p "$(dirname "$INSTALL_DIR")"
  STAGING=$(mktemp -d "$(dirname "$INSTALL_DIR")/.condor-annex-download.XXXXXX")
  trap 'rm -rf "$STAGING"' EXIT

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
  delete) remove_install ;;
  *) die "unknown action '$1'" ;;
esac
