#!/usr/bin/env bash
# Builds egress-monitor_<version>_<arch>.deb, one command:
#
#   bash systemd/build-deb.sh [--bin PATH] [--out DIR]
#
# from the release binary with the Swift runtime linked in (built here as the README installs
# it unless --bin names one), the systemd unit (ExecStart in /usr/bin), the sample config as a
# conffile in /etc/egress-monitor, and the dashboards, rules and runbook in
# /usr/share/egress-monitor. The unit is installed, not enabled: the config needs its paths and
# targets first (README, Operations). Checks the package with lintian when it is installed.
# Tests/Install/deb.sh installs it in an isolated root and starts the agent from it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN="" OUT="$ROOT/.build-deb"
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) BIN=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "build-deb: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "$BIN" ]; then
  swift build -c release --static-swift-stdlib --scratch-path .build-perf-static --product egress-monitor 2>&1 | tail -1
  BIN=$ROOT/.build-perf-static/release/egress-monitor
fi
VERSION=$(sed -n 's/.*static let current = "\(.*\)".*/\1/p' Sources/EgressMonitor/Version.swift)
ARCH=$(dpkg --print-architecture)
STAGE=$(mktemp -d /tmp/egress-deb.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
P=$STAGE/egress-monitor
mkdir -p "$P/DEBIAN" "$P/usr/bin" "$P/lib/systemd/system" "$P/etc/egress-monitor" \
  "$P/usr/share/egress-monitor/dashboards" "$P/usr/share/doc/egress-monitor"

install -m 0755 "$BIN" "$P/usr/bin/egress-monitor"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$P/usr/bin/egress-monitor"
sed 's|/usr/local/bin/egress-monitor|/usr/bin/egress-monitor|g' systemd/egress-monitor.service > "$P/lib/systemd/system/egress-monitor.service"
chmod 0644 "$P/lib/systemd/system/egress-monitor.service"
install -m 0644 systemd/config.json "$P/etc/egress-monitor/config.json"
install -m 0644 dashboards/egress-monitor.json dashboards/egress-monitor.rules.yml dashboards/alertmanager-inhibit.yml \
  dashboards/README.md "$P/usr/share/egress-monitor/dashboards/"
install -m 0644 systemd/cap-net-raw.conf "$P/usr/share/egress-monitor/"

cat > "$P/usr/share/doc/egress-monitor/copyright" <<COPY
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: egress-monitor

Files: *
Copyright: 2026 the egress-monitor authors
License: Apache-2.0
 On Debian systems, the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
COPY
printf 'egress-monitor (%s) unstable; urgency=medium\n\n  * Built by systemd/build-deb.sh.\n\n -- egress-monitor team <egress-monitor@example.org>  %s\n' \
  "$VERSION" "$(date -R -u -d @"${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")" \
  | gzip -9n > "$P/usr/share/doc/egress-monitor/changelog.gz"

# Dependencies: the packages of the libraries the binary names (readelf), as dpkg knows them.
DEPENDS=$(readelf -d "$P/usr/bin/egress-monitor" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | while read -r lib; do
  path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64|aarch64|AArch64/ { print $NF; exit }')
  # dpkg knows a library by the path its package ships (/lib/… or /usr/lib/…, usrmerge).
  [ -z "$path" ] || { dpkg -S "$path" 2>/dev/null || dpkg -S "$(readlink -f "$path")" 2>/dev/null || true; } | cut -d: -f1 | head -1
done | sort -u | paste -sd, | sed 's/,/, /g')
[ -n "$DEPENDS" ] || { echo "build-deb: could not find the packages of the binary's libraries" >&2; exit 1; }
cat > "$P/DEBIAN/control" <<CONTROL
Package: egress-monitor
Version: $VERSION
Architecture: $ARCH
Maintainer: egress-monitor team <egress-monitor@example.org>
Installed-Size: $(du -sk --exclude=DEBIAN "$P" | cut -f1)
Depends: $DEPENDS
Section: net
Priority: optional
Description: probes Docker Hub and registry mirrors through every egress path
 A long-running agent that probes Docker Hub and registry mirrors through
 every configured egress path (direct, interface, source address, HTTP
 CONNECT and SOCKS5 proxies), phase by phase, and serves Prometheus metrics.
CONTROL
echo "/etc/egress-monitor/config.json" > "$P/DEBIAN/conffiles"

mkdir -p "$OUT"
DEB=$OUT/egress-monitor_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Zxz --build "$P" "$DEB" >/dev/null
echo "$DEB"
if command -v lintian >/dev/null; then
  # Native package, no source: only the binary package's tags.
  lintian --fail-on error,warning --suppress-tags no-manual-page "$DEB" >&2
fi
