#!/usr/bin/env bash
# The .deb (systemd/build-deb.sh) installs offline with `apt install ./egress-monitor_….deb` on a
# clean Debian root, the agent starts from it, and it removes cleanly. Needs root.
#
# The root: `debootstrap --variant=minbase bookworm` with the package's dependencies included
# (what Debian gives a minimal system that has them), built once and cached outside the clone in
# $EGRESS_DEB_ROOT_CACHE (default /var/cache/egress-monitor-tests/bookworm-minbase). It is rebuilt
# when absent, corrupt (a dependency not installed, dpkg --audit complaining), older than
# $EGRESS_DEB_ROOT_MAX_AGE_DAYS (30) or built for another dependency list; a build goes to a temp
# dir renamed into place, so a half-built root is never used. Downloading it is the only network
# this test uses (deb.debian.org, the registry apt uses). When the mirror cannot be reached the
# test FAILS under CI=1 and is SKIPPED (loudly) otherwise.
#
# Each run mounts an overlay of the cached root (the cache stays clean) and, in new mount, pid and
# network namespaces (only a loopback: apt cannot download anything, no packet leaves):
#   1. apt-get install /tmp/egress-monitor_….deb, offline;
#   2. the agent starts from the installed unit's ExecStart command line, as the unit's user (the
#      unit has DynamicUser=yes: an unnamed uid from systemd's dynamic range, as systemd would
#      allocate) and UMask, and serves /metrics on loopback; SIGTERM stops it with status 0;
#   3. apt-get purge removes it: every path `dpkg -L` listed that the root did not have before is
#      gone, and nothing is left that was not there before the install but dpkg's and apt's own
#      records and logs.
#
#   bash Tests/Install/deb.sh [--bin PATH]
set -euo pipefail
cd "$(dirname "$0")/../.."
name=deb-check
[ "$(id -u)" -eq 0 ] || { echo "$name: SKIPPED (needs root: debootstrap, unshare, mount, chroot), not passed" >&2; exit 0; }
# Unavailable means a skip when run by hand, a failure under CI (Tests/skips.sh's rule).
unavailable() {
  if [ -n "${CI:-}" ]; then echo "$name: FAILED — $1 (CI is set: this test may not skip)" >&2; exit 1; fi
  echo "$name: SKIPPED — $1; not passed" >&2; exit 0
}
command -v debootstrap >/dev/null || unavailable "debootstrap is not installed (Tests/peers.sh installs it)"

DEB=$(bash systemd/build-deb.sh "$@" | tail -1)
[ -f "$DEB" ] || { echo "$name: no package built" >&2; exit 1; }

# ---- The cached clean root ------------------------------------------------------------------
SUITE=bookworm
MIRROR=${EGRESS_DEB_MIRROR:-http://deb.debian.org/debian}
CACHE=${EGRESS_DEB_ROOT_CACHE:-/var/cache/egress-monitor-tests}
ROOTFS=$CACHE/$SUITE-minbase
STAMP=.egress-monitor-test-root
MAX_AGE_DAYS=${EGRESS_DEB_ROOT_MAX_AGE_DAYS:-30}
# The package's Depends, without versions or alternatives: what the root must already have.
INCLUDE=$(dpkg-deb -f "$DEB" Depends | tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/[[:space:]]//g' | grep . | sort -u | paste -sd,)
mkdir -p "$CACHE"
# One run builds or replaces the root at a time; the others read it under a shared lock (a
# replacement deletes the old root, which must not be under a running overlay).
exec 9>"$CACHE/.lock"
flock -x 9
# A build a killed run left (a whole root, ~200 MB each) would stay forever: under the exclusive
# lock no build runs, so every one left goes now. --one-file-system: a killed debootstrap may
# have left its /proc or /sys mounted there, and rm must not descend into them.
for left in "$CACHE"/.build.*; do
  [ -e "$left" ] || continue
  echo "$name: removing $left, left by an interrupted build"
  rm -rf --one-file-system "$left" || echo "$name: could not remove all of $left (a mount still in it?)" >&2
done
root_ok() {
  [ -f "$ROOTFS/$STAMP" ] || { echo "$name: no cached root at $ROOTFS"; return 1; }
  grep -qx "include=$INCLUDE" "$ROOTFS/$STAMP" || { echo "$name: the cached root was built for other dependencies"; return 1; }
  [ -z "$(find "$ROOTFS/$STAMP" -mtime +"$MAX_AGE_DAYS")" ] || { echo "$name: the cached root is older than $MAX_AGE_DAYS days"; return 1; }
  # Read-only queries of the cached root's dpkg database.
  local pkgs
  pkgs=$(chroot "$ROOTFS" dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' ${INCLUDE//,/ } apt dpkg 2>/dev/null | grep -c '^ii ' || true)
  [ "$pkgs" -eq $(( $(tr ',' '\n' <<<"$INCLUDE" | wc -l) + 2 )) ] || { echo "$name: the cached root lacks a dependency (corrupt)"; return 1; }
  [ -z "$(chroot "$ROOTFS" dpkg --audit 2>&1)" ] || { echo "$name: dpkg --audit complains about the cached root (corrupt)"; return 1; }
}
if ! root_ok; then
  echo "$name: debootstrap --variant=minbase --include=$INCLUDE $SUITE ($MIRROR) into $ROOTFS"
  build=$(mktemp -d "$CACHE/.build.XXXXXX")
  # Interrupted from here on (a failed step, ^C, a timeout), the half-built root goes with it.
  trap 'rm -rf --one-file-system "$build"' EXIT
  trap 'exit 130' INT TERM
  started=$(date +%s)
  if ! debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$build/root" "$MIRROR" > "$build/debootstrap.log" 2>&1; then
    tail -5 "$build/debootstrap.log" >&2
    rm -rf "$build"
    if curl -sf --max-time 10 -o /dev/null "$MIRROR/dists/$SUITE/Release"; then
      echo "$name: FAILED — debootstrap failed although $MIRROR answers" >&2; exit 1
    fi
    unavailable "debootstrap could not reach $MIRROR"
  fi
  # Nothing of the build host's network setup stays in the root.
  rm -f "$build/root/etc/resolv.conf" "$build/root/etc/hostname"
  printf 'include=%s\nsuite=%s\nmirror=%s\nbuilt=%s\n' "$INCLUDE" "$SUITE" "$MIRROR" "$(date -u +%F)" > "$build/root/$STAMP"
  # rename(2) does not replace a non-empty directory: the old root moves aside first.
  if [ -e "$ROOTFS" ]; then mv "$ROOTFS" "$build/old"; fi
  mv "$build/root" "$ROOTFS"
  rm -rf "$build"
  trap - EXIT INT TERM
  echo "$name: clean root built in $(( $(date +%s) - started )) s ($(du -sm "$ROOTFS" | cut -f1) MB)"
  root_ok
fi
flock -s 9

# ---- The run on an overlay of it ------------------------------------------------------------
T=$(mktemp -d /tmp/egress-deb-root.XXXXXX)
trap 'rm -rf "$T"' EXIT
cp "$DEB" "$T/"
unshare --mount --net --pid --fork bash -euo pipefail -c '
  T=$1 LOWER=$2 DEB=/tmp/$3 name=$4
  mount --make-rprivate /
  mkdir -p "$T/layer" && mount -t tmpfs tmpfs "$T/layer"
  mkdir -p "$T/layer/upper" "$T/layer/work" "$T/root"
  R=$T/root
  mount -t overlay overlay -o "lowerdir=$LOWER,upperdir=$T/layer/upper,workdir=$T/layer/work" "$R"
  # This pid namespace'"'"'s /proc; the few devices apt and the agent use; empty /tmp and /run.
  mount -t proc proc "$R/proc"
  mount -t tmpfs -o mode=0755 tmpfs "$R/dev"
  for d in null zero full random urandom; do touch "$R/dev/$d"; mount --bind "/dev/$d" "$R/dev/$d"; done
  # apt logs through a pseudo-terminal: a devpts instance of its own.
  mkdir "$R/dev/pts" && mount -t devpts -o newinstance,ptmxmode=0666 devpts "$R/dev/pts" && ln -s pts/ptmx "$R/dev/ptmx"
  mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
  mount -t tmpfs -o mode=0755 tmpfs "$R/run"
  ip link set lo up
  cp "$T/${DEB#/tmp/}" "$R$DEB"
  cd /
  in_root() { chroot "$R" "$@"; }
  # Every path in the root, but the mounts above (-xdev): before the install, after the purge.
  paths() { (cd "$R" && find . -xdev | sed "s|^\.||" | grep . | sort); }
  paths > "$T/before"
  ! in_root dpkg -s egress-monitor >/dev/null 2>&1 || { echo "$name: egress-monitor already installed in the clean root" >&2; exit 1; }

  DEBIAN_FRONTEND=noninteractive in_root apt-get install -y -q --no-install-recommends "$DEB"
  in_root dpkg -s egress-monitor | grep -q "^Status: install ok installed"
  # Listed as the package names them, canonical through the root'"'"'s symlinks (usrmerge: /lib
  # is /usr/lib), as find sees them; "/." is the root itself.
  in_root dpkg -L egress-monitor | grep -vx "/\." | while read -r p; do in_root realpath -m -- "$p"; done | sort -u > "$T/listed"
  while read -r p; do [ -e "$R$p" ] || { echo "$name: dpkg lists $p, which is not installed" >&2; exit 1; }; done < "$T/listed"
  in_root /usr/bin/egress-monitor --version

  # The unit as systemd would start it: its ExecStart, its user, its UMask.
  unit=$R/lib/systemd/system/egress-monitor.service
  exec_start=$(sed -n "s/^ExecStart=//p" "$unit")
  [ -n "$exec_start" ] || { echo "$name: the installed unit has no ExecStart" >&2; exit 1; }
  user=$(sed -n "s/^User=//p" "$unit")
  umask_=$(sed -n "s/^UMask=//p" "$unit")
  if [ -n "$user" ]; then
    ids=(--reuid="$user" --regid="$(in_root id -g "$user")" --init-groups) who="user $user"
  elif grep -qx "DynamicUser=yes" "$unit"; then
    # The first uid of systemd'"'"'s dynamic range (61184-65519), which no file in the root owns.
    ids=(--reuid=61184 --regid=61184 --clear-groups) who="uid 61184 (DynamicUser)"
  else
    ids=() who=root
  fi
  echo "$name: starting the unit'"'"'s ExecStart=$exec_start as $who, umask ${umask_:-0022}"
  # ExecStart has no shell quoting to honour: split on spaces as systemd would here.
  read -r -a argv <<<"$exec_start"
  ( umask "${umask_:-0022}"; exec chroot "$R" setpriv "${ids[@]}" --no-new-privs --inh-caps=-all --bounding-set=-all -- "${argv[@]}" ) \
    > "$T/agent.log" 2>&1 &
  agent=$!
  listen=$(in_root sed -n "s/.*\"listen\": *\"[^:]*:\([0-9]*\)\".*/\1/p" /etc/egress-monitor/config.json)
  ok=""
  for _ in $(seq 100); do
    if curl -sf --noproxy "*" --max-time 1 "http://127.0.0.1:${listen:-9469}/metrics" > "$T/metrics" && grep -q "^egress_build_info" "$T/metrics"; then ok=1; break; fi
    sleep 0.1
  done
  # $R/proc is this pid namespace'"'"'s, where $agent is the agent (the subshell exec'"'"'s into it).
  uid=$(stat -c %u "$R/proc/$agent" 2>/dev/null || echo gone)
  kill -TERM "$agent"
  status=0
  if timeout 35 tail --pid="$agent" -f /dev/null; then wait "$agent" || status=$?; else status=hung; kill -KILL "$agent"; fi
  [ -n "$ok" ] || { cat "$T/agent.log" >&2; echo "$name: the installed agent did not serve /metrics" >&2; exit 1; }
  if [ ${#ids[@]} -gt 0 ] && [ "$uid" != "$(in_root id -u "${user:-61184}" 2>/dev/null || echo 61184)" ]; then
    echo "$name: the agent ran as uid $uid, not as the unit'"'"'s user" >&2; exit 1
  fi
  [ "$status" = 0 ] || { cat "$T/agent.log" >&2; echo "$name: the agent did not exit 0 on SIGTERM (status $status)" >&2; exit 1; }
  echo "$name: the installed agent served /metrics on 127.0.0.1:${listen:-9469} as uid $uid and exited 0 on SIGTERM"

  DEBIAN_FRONTEND=noninteractive in_root apt-get purge -y -q egress-monitor
  ! in_root dpkg -s egress-monitor >/dev/null 2>&1 || { echo "$name: egress-monitor still known to dpkg after purge" >&2; exit 1; }
  rm -f "$R$DEB"
  paths > "$T/after"
  # What dpkg installed and the root did not have before: all gone.
  left=$(comm -23 "$T/listed" "$T/before" | while read -r p; do [ ! -e "$R$p" ] || echo "$p"; done)
  [ -z "$left" ] || { echo "$name: left after purge: $left" >&2; exit 1; }
  # Nothing new anywhere else, but dpkg'"'"'s and apt'"'"'s own state and logs.
  new=$(comm -13 "$T/before" "$T/after" | grep -Ev "^/var/(lib/dpkg|lib/apt|cache/apt|cache/debconf|cache/ldconfig|log)(/|$)" || true)
  [ -z "$new" ] || { echo "$name: new after install and purge: $new" >&2; exit 1; }
  echo "$name: installed offline on a clean $(cat "$R/etc/debian_version") root, started, purged cleanly ($(wc -l < "$T/listed") paths listed)"
' "$name" "$T" "$ROOTFS" "$(basename "$DEB")" "$name"
