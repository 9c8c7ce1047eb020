#!/usr/bin/env bash
# The first step, before anything is made on this machine or on AWS: the tools the other steps run,
# and a tarball of this release for this machine's platform. What would fail later fails here.
# Values (rendered header): CONDOR_VERSION TARBALL_URL PLATFORMS NEEDS_PYTHON3
set -euo pipefail

# Which family of distributions this machine's is: where each tool's package is named alike.
distro_family() {
  local ids
  # shellcheck disable=SC1091
  ids=$(. /etc/os-release 2>/dev/null && printf '%s %s' "${ID:-}" "${ID_LIKE:-}")
  case " $ids " in
    *" debian "* | *" ubuntu "*) echo debian ;;
    *suse* | *" sles "*) echo suse ;;
    *" rhel "* | *" fedora "* | *" centos "* | *" amzn "*) echo rhel ;;
    *) echo other ;;
  esac
}

# The package that has a tool (or, for cron, the daemon) on this machine's distribution.
package_of() {
  case "$1:$(distro_family)" in
    cron:debian | crontab:debian) echo cron ;;
    cron:* | crontab:*) echo cronie ;;
    pgrep:rhel) echo procps-ng ;;
    pgrep:*) echo procps ;;
    ssh-keygen:debian) echo openssh-client ;;
    ssh-keygen:*) echo openssh-clients ;;
    sha256sum:*) echo coreutils ;;
    flock:*) echo util-linux ;;
    *) echo "$1" ;;
  esac
}

# What the steps and the keeper run that a minimal image can lack, each with its package here.
missing_tools() {
  local tool
  for tool in tar gzip sha256sum ssh-keygen crontab flock pgrep; do
    command -v "$tool" >/dev/null || printf '%s (%s)\n' "$tool" "$(package_of "$tool")"
  done
  command -v curl >/dev/null || command -v wget >/dev/null || printf 'curl or wget (curl)\n'
  if [ "$NEEDS_PYTHON3" = yes ]; then
    # HTCondor 24.11 and later run `htcondor annex ...` through `#!/usr/bin/env python3`.
    command -v python3 >/dev/null || printf 'python3 (python3), which the htcondor tool of %s runs on\n' \
      "$CONDOR_VERSION"
  fi
}

# The keeper runs from the user's crontab: without a cron daemon HTCondor stays down after a reboot.
no_cron_daemon() {
  pgrep -x 'cron|crond' >/dev/null && return 1
  local package
  package=$(package_of cron)
  printf 'no cron daemon runs on %s, so nothing would start HTCondor again after a reboot or if it dies:' "$(hostname)"
  printf ' install %s and start it (systemctl enable --now %s)' "$package" "$([ "$package" = cron ] && echo cron || echo crond)"
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
  if missing=$(no_cron_daemon); then
    die "$missing, then run pulumi up again"
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
