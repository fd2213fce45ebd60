#!/usr/bin/env bash
# The whole test suite, as a new user and CI run it: installs the Debian packages the tests use
# as real peers when they are missing, builds, and runs every test.
#
#   bash Tests/run.sh            # everything
#   bash Tests/run.sh --filter TLSTests   # extra arguments go to `swift test`
set -euo pipefail
cd "$(dirname "$0")/.."

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
)
missing=()
for prog in "${!need[@]}"; do
  command -v "$prog" >/dev/null 2>&1 || missing+=("${need[$prog]}")
done
if ! pkg-config --exists openssl 2>/dev/null; then missing+=(libssl-dev pkg-config); fi
[ -f /usr/include/crypt.h ] || missing+=(libcrypt-dev)
if [ ${#missing[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  echo "tests: installing $pkgs"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
fi
# The tests start their own instances of these on free loopback ports; a service Debian may
# have started on install does not get in their way.

if [ "$(id -u)" -ne 0 ]; then
  echo "tests: NOT ROOT — the network-namespace tests (unshare -n, ip netns, nft) will be reported as SKIPPED, not passed." >&2
fi

swift build --build-tests
if [ $# -gt 0 ]; then
  exec swift test --skip-build "$@"
fi
# Two runs: the CPU-bound unit tests (parsers fed byte by byte, exit tests that start the test
# binary again) first, then the suites that measure time against real peers. Run together on two
# cores, the first kind starves Swift's cooperative pool and turns the second kind's deadline
# checks into measurements of the machine's load.
io_suites='ProbeTests|SocketTests|TLSTests|LabTests|AgentTests|NamespaceTests|OpsTests|PathTests|RegistryTests|CLITests|ReportTests|ServerTests|ProcessTests|FaultMatrixTests'
swift test --skip-build --skip "$io_suites"
# Each timing suite in a process of its own: one suite's CPU work (hashing blobs, signing
# tokens) cannot delay another's in-process peers past their deadlines.
failed=()
for suite in ${io_suites//|/ }; do
  swift test --skip-build --filter "$suite" || failed+=("$suite")
done

# ---- Fuzzing (issue 5) ------------------------------------------------------------------------
# Every libFuzzer harness (DNS messages, HTTP responses and requests, WWW-Authenticate, SOCKS5 and
# CONNECT replies, the config decoder, the JSON parser and writer) for a bounded time from its seed corpus; a crash fails the
# run. Tests/Fuzz/run.sh builds them with swiftc into .build-fuzz, outside SwiftPM.
bash Tests/Fuzz/run.sh "${EGRESS_FUZZ_SECONDS:-20}" || failed+=("fuzzing")
# -----------------------------------------------------------------------------------------------

if [ ${#failed[@]} -gt 0 ]; then
  echo "tests: FAILED suites: ${failed[*]}" >&2
  exit 1
fi
