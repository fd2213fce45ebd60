#!/usr/bin/env bash
# Sourced by Tests/run.sh, Tests/Sanitizers/run.sh and Tests/Soak/run.sh: installs the Debian
# packages the tests use as real peers when they are missing, so that a suite run on a fresh
# Debian machine skips nothing because a peer was absent.
# Program -> Debian package providing it. Tests that need a program skip loudly without it;
# this script makes sure none is missing, so on a Debian machine nothing is skipped.
declare -A need=(
  [dnsmasq]=dnsmasq-base
  [docker-registry]=docker-registry
  [nginx]=nginx-light
  [promtool]=prometheus
  [prometheus]=prometheus
  [tinyproxy]=tinyproxy
  [microsocks]=microsocks
  [socat]=socat
  [nft]=nftables
  [dig]=bind9-dnsutils
  [curl]=curl
  [openssl]=openssl
  [unshare]=util-linux
  [ip]=iproute2
  [systemd-analyze]=systemd
  [python3]=python3
  [lintian]=lintian
  [dockerd]=docker.io
  [ctr]=containerd
  [nsenter]=util-linux
  [prometheus-alertmanager]=prometheus-alertmanager
  [dnsdist]=dnsdist
  [unbound]=unbound
  [unbound-checkconf]=unbound
  [setpriv]=util-linux
  [debootstrap]=debootstrap
)
missing=()
for prog in "${!need[@]}"; do
  command -v "$prog" >/dev/null 2>&1 || missing+=("${need[$prog]}")
done
if ! pkg-config --exists openssl 2>/dev/null; then missing+=(libssl-dev pkg-config); fi
if ! pkg-config --exists zlib 2>/dev/null; then missing+=(zlib1g-dev pkg-config); fi
[ -f /usr/include/crypt.h ] || missing+=(libcrypt-dev)
if [ ${#missing[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  echo "tests: installing $pkgs"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "tests: NOT ROOT — the network-namespace tests (unshare -n, ip netns, nft) will be reported as SKIPPED, not passed." >&2
fi
