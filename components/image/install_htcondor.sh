#!/usr/bin/env bash
# The annex image's one build step: the pool's own HTCondor release, configured to be an annex
# instance by HTCondor's own boot script (etc/examples/condor-annex-ec2 and 50ec2.config, both in
# the release tarball), started at boot by systemd. Runs as root on the image's build instance.
# Values (rendered header): CONDOR_VERSION TARBALL_URL TARBALL_SHA256
set -euo pipefail

RELEASE_DIR=/opt/condor
BOOT_SCRIPT=/usr/libexec/condor/condor-annex-ec2
UNITS=/etc/systemd/system

log() { printf 'condor-annex image: %s\n' "$*" >&2; }
die() { printf 'condor-annex image: ERROR: %s\n' "$*" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

log "downloading HTCondor $CONDOR_VERSION from $TARBALL_URL"
curl --fail --silent --show-error --location --retry 5 --connect-timeout 30 -o "$work/condor.tar.gz" "$TARBALL_URL" \
  || die "download of $TARBALL_URL failed"
actual=$(sha256sum "$work/condor.tar.gz" | cut -d' ' -f1)
if [ -n "$TARBALL_SHA256" ]; then
  [ "$actual" = "$TARBALL_SHA256" ] || die "checksum mismatch for $TARBALL_URL: expected $TARBALL_SHA256, got $actual"
  log "sha256 verified: $actual"
else
  log "WARNING: the tarball is not verified (annexImageTarballSha256 is not set); its sha256 is $actual"
fi
install -d -m 0755 "$RELEASE_DIR"
tar -xzf "$work/condor.tar.gz" -C "$RELEASE_DIR" --strip-components=1 --no-same-owner
examples="$RELEASE_DIR/etc/examples"
[ -f "$examples/condor-annex-ec2" ] && [ -f "$examples/50ec2.config" ] \
  || die "$TARBALL_URL has no etc/examples/condor-annex-ec2 and 50ec2.config"

# The daemons start as root and run as condor (CONDOR_IDS defaults to this account).
id condor >/dev/null 2>&1 || useradd --system --user-group --home-dir /var/lib/condor --shell /sbin/nologin condor
install -d -m 0755 -o condor -g condor /var/lib/condor /var/lib/condor/spool /var/lib/condor/execute \
  /var/log/condor /var/lock/condor
# condor_annex's tarball is unpacked here (config.d/ up to 24.0; from 24.11 also passwords.d/ and tokens.d/).
install -d -m 0755 /etc/condor /etc/condor/config.d
cat >/etc/condor/condor_config <<CONFIG
# The condor-annex image: HTCondor $CONDOR_VERSION from $TARBALL_URL.
RELEASE_DIR = $RELEASE_DIR
LOCAL_DIR = /var/lib/condor
LOG = /var/log/condor
LOCK = /var/lock/condor
ETC = /etc/condor
LOCAL_CONFIG_DIR = /etc/condor/config.d
CONFIG
install -m 0644 "$examples/50ec2.config" /etc/condor/config.d/50ec2.config

# HTCondor's boot script, changed in two places (each printed by the build, below). It asks the
# metadata service without a session token, which instances that require IMDSv2 (Amazon Linux
# 2023's images are registered so) refuse: every call takes a token first. And it sources
# /etc/init.d/functions, a Red Hat init library it uses nothing of, missing on newer systems.
install -d -m 0755 "$(dirname "$BOOT_SCRIPT")"
{
  sed -n '1p' "$examples/condor-annex-ec2"
  cat <<'IMDS'
# condor-annex: every metadata request with an IMDSv2 session token (works with IMDSv1 too).
imds_curl() {
	local token
	token=$(/usr/bin/curl -s -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' http://169.254.169.254/latest/api/token)
	/usr/bin/curl ${token:+-H "X-aws-ec2-metadata-token: ${token}"} "$@"
}
IMDS
  sed -e '1d' \
    -e 's#/usr/bin/curl -s http://169\.254\.169\.254/#imds_curl -s http://169.254.169.254/#g' \
    -e 's#\([`(]\)curl -s http://169\.254\.169\.254/#\1imds_curl -s http://169.254.169.254/#g' \
    -e 's#^\. /etc/init\.d/functions$#[ -f /etc/init.d/functions ] \&\& . /etc/init.d/functions#' \
    "$examples/condor-annex-ec2"
} >"$work/condor-annex-ec2"
install -m 0755 "$work/condor-annex-ec2" "$BOOT_SCRIPT"
log "HTCondor's boot script, as installed, differs from $examples/condor-annex-ec2 in:"
diff "$examples/condor-annex-ec2" "$BOOT_SCRIPT" >&2 || true
grep -q 'http://169.254.169.254/latest/meta-data' <(grep -v imds_curl "$BOOT_SCRIPT") \
  && die "the boot script still asks the metadata service without a token"

# 50ec2.config has the master run this when the annex has no more work: the instance shuts down,
# which condor_annex's launch (instance-initiated shutdown: terminate) turns into its end.
cat >/etc/condor/master_shutdown_script.sh <<'SHUTDOWN'
#!/bin/sh
/sbin/shutdown -h now
SHUTDOWN
chmod 0755 /etc/condor/master_shutdown_script.sh

# The boot script before condor_master, at every boot, as HTCondor's packages enable them.
install -d -m 0755 "$UNITS/multi-user.target.wants"
install -m 0644 "$examples/condor-annex-ec2.service" "$UNITS/condor-annex-ec2.service"
sed -e "s#^ExecStart=/usr/sbin/condor_master#ExecStart=$RELEASE_DIR/sbin/condor_master#" \
  "$examples/condor.service" >"$UNITS/condor.service"
chmod 0644 "$UNITS/condor.service"
for unit in condor-annex-ec2.service condor.service; do
  ln -sfn "$UNITS/$unit" "$UNITS/multi-user.target.wants/$unit"
done
log "installed HTCondor $CONDOR_VERSION in $RELEASE_DIR; $("$RELEASE_DIR/bin/condor_version" | head -n 1)"
