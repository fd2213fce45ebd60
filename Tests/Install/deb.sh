#!/usr/bin/env bash
# The .deb (systemd/build-deb.sh) installs offline with `apt install ./egress-monitor_….deb` in
# an isolated root, the agent starts from it, and it removes cleanly (purge leaves none of its
# files). Needs root.
#
# The root is an overlay on the host's /, in new mount and network namespaces: installing writes
# only to the overlay's upper layer (a tmpfs), the host's dpkg database and files stay as they
# were, and the only network is a loopback, so apt cannot download anything: it must install
# from the file with what is already there.
#
#   bash Tests/Install/deb.sh [--bin PATH]
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "deb check: SKIPPED (needs root: unshare, mount, chroot), not passed" >&2; exit 0; }
DEB=$(bash systemd/build-deb.sh "$@" | tail -1)
[ -f "$DEB" ] || { echo "deb check: no package built" >&2; exit 1; }
T=$(mktemp -d /tmp/egress-deb-root.XXXXXX)
trap 'rm -rf "$T"' EXIT
cp "$DEB" "$T/egress-monitor.deb"
unshare --mount --net --fork bash -euo pipefail -c '
  T=$1
  mount --make-rprivate /
  mkdir -p "$T/layer" && mount -t tmpfs tmpfs "$T/layer"
  mkdir -p "$T/layer/upper" "$T/layer/work" "$T/root"
  mount -t overlay overlay -o "lowerdir=/,upperdir=$T/layer/upper,workdir=$T/layer/work" "$T/root"
  mount -t proc proc "$T/root/proc"
  mount --rbind /dev "$T/root/dev"
  mount -t tmpfs tmpfs "$T/root/tmp"
  mount -t tmpfs tmpfs "$T/root/run"
  ip link set lo up
  cp "$T/egress-monitor.deb" "$T/root/tmp/"
  cd /
  in_root() { chroot "$T/root" "$@"; }
  ! in_root dpkg -s egress-monitor >/dev/null 2>&1 || { echo "deb check: egress-monitor already installed in the root" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive in_root apt-get install -y -q /tmp/egress-monitor.deb
  in_root dpkg -s egress-monitor | grep -q "^Status: install ok installed"
  in_root /usr/bin/egress-monitor --version
  in_root /usr/bin/egress-monitor validate --config /etc/egress-monitor/config.json
  # Starts from the package: its unit'"'"'s command line, on loopback, in this namespace.
  in_root /usr/bin/egress-monitor --config /etc/egress-monitor/config.json --listen 127.0.0.1:9469 >/dev/null 2>&1 &
  agent=$!
  ok=""
  for _ in $(seq 100); do
    if curl -sf --noproxy "*" --max-time 1 http://127.0.0.1:9469/metrics | grep -q "^egress_build_info"; then ok=1; break; fi
    sleep 0.1
  done
  kill "$agent"; wait "$agent" 2>/dev/null || true
  [ -n "$ok" ] || { echo "deb check: the installed agent did not serve /metrics" >&2; exit 1; }
  echo "deb check: the installed agent served /metrics"
  DEBIAN_FRONTEND=noninteractive in_root apt-get purge -y -q egress-monitor
  ! in_root dpkg -s egress-monitor >/dev/null 2>&1
  for f in /usr/bin/egress-monitor /lib/systemd/system/egress-monitor.service /etc/egress-monitor /usr/share/egress-monitor /usr/share/doc/egress-monitor; do
    [ ! -e "$T/root$f" ] || { echo "deb check: $f left after purge" >&2; exit 1; }
  done
  echo "deb check: installed, started, purged cleanly"
' deb-check "$T"
