#!/usr/bin/env bash
# The first step, before anything is made on this machine or on AWS: the tools the other steps run,
# and a tarball of this release for this machine's platform. What would fail later fails here.
# Values (rendered header): CONDOR_VERSION TARBALL_URL INSTALLER NEEDS_PYTHON3
set -euo pipefail

# What the steps run that a minimal image can lack, with the Debian/Ubuntu package that has it.
missing_tools() {
  local tool
  for tool in tar:tar gzip:gzip sha256sum:coreutils ssh-keygen:openssh-client crontab:cron flock:util-linux; do
    command -v "${tool%%:*}" >/dev/null || printf '%s (%s)\n' "${tool%%:*}" "${tool#*:}"
  done
  command -v curl >/dev/null || command -v wget >/dev/null || printf 'curl or wget (curl)\n'
  if [ "$NEEDS_PYTHON3" = yes ]; then
    # HTCondor 24.11 and later run `htcondor annex ...` through `#!/usr/bin/env python3`.
    command -v python3 >/dev/null || printf 'python3 (python3), which the htcondor tool of %s runs on\n' \
      "$CONDOR_VERSION"
  fi
}

# Whether the web server has the tarball, without downloading it.
tarball_answers() {
  local url=$1 errors=$2
  if command -v curl >/dev/null; then
    curl --fail --silent --show-error --location --head --retry 2 --connect-timeout 30 -o /dev/null "$url" 2>"$errors"
  else
    wget --quiet --spider --tries=2 --timeout=30 "$url" 2>"$errors"
  fi
}

create() {
  local missing url errors
  missing=$(missing_tools)
  if [ -n "$missing" ]; then
    die "$(hostname) lacks what the install needs; install it and run pulumi up again: $(paste -sd ';' <<<"$missing")"
  fi
  url=$(tarball_url)
  errors=$(mktemp)
  if ! tarball_answers "$url" "$errors"; then
    local why
    why=$(tail -n 1 "$errors")
    rm -f "$errors"
    die "no HTCondor $CONDOR_VERSION tarball for this machine at $url ($why). HTCondor builds each release" \
      "for some platforms only (nmi_tools/nmi-build-platforms at the release's tag): choose a condorVersion" \
      "built for this platform, or set condorTarballUrl"
  fi
  rm -f "$errors"
  log "tools present; the HTCondor $CONDOR_VERSION tarball for this machine is at $url"
}

case "$1" in
  create) create ;;
  # It made nothing.
  delete) : ;;
  *) die "unknown action '$1'" ;;
esac
