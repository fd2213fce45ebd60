#!/usr/bin/env bash
# The README's install recipe, checked: the release binary built with --static-swift-stdlib
# needs only Debian's base libraries, and runs on a host without the Swift toolchain.
#
#   bash Tests/Install/check.sh            # as root (a mount and a network namespace)
#
# 1. Builds it as the README says: swift build -c release --static-swift-stdlib --product egress-monitor
# 2. Its dynamic section names only libc, libm, libstdc++, libgcc_s, the loader, libssl, libcrypto,
#    libcrypt and libz (Debian's libc6, libstdc++6, libgcc-s1, libssl3, libcrypt1, zlib1g).
# 3. In a new mount namespace where the toolchain's runtime directory is hidden under an empty
#    tmpfs, and a new network namespace with only loopback (the default config probes Docker Hub:
#    no packet leaves), the static binary starts on its embedded default config, serves /metrics
#    with Docker Hub's probes failing at dns or connect, and exits 0 on SIGTERM. The debug binary,
#    linked against the shared runtime, must fail to start there: that shows the hiding works.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
  echo "install-check: SKIPPED — needs root (unshare -m -n); NOT counted as passed" >&2
  exit 0
fi

echo "install-check: swift build -c release --static-swift-stdlib --product egress-monitor"
swift build -c release --static-swift-stdlib --product egress-monitor 2>&1 | tail -1
bin=$PWD/.build/release/egress-monitor
debug_bin=$PWD/.build/debug/egress-monitor
[ -x "$bin" ] || { echo "install-check: FAILED — no binary at $bin" >&2; exit 1; }
# The control: a binary on the shared runtime, which must not start once the runtime is hidden.
swift build --product egress-monitor 2>&1 | tail -1
[ -x "$debug_bin" ] || { echo "install-check: FAILED — no shared-runtime binary at $debug_bin for the control" >&2; exit 1; }

allowed='^(libc\.so\.6|libm\.so\.6|libstdc\+\+\.so\.6|libgcc_s\.so\.1|ld-linux-[a-z0-9_-]+\.so\.[0-9]+|libssl\.so\.3|libcrypto\.so\.3|libcrypt\.so\.1|libz\.so\.1)$'
needed=$(readelf -d "$bin" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')
bad=$(grep -Ev "$allowed" <<<"$needed" || true)
if [ -n "$bad" ]; then
  echo "install-check: FAILED — the release binary needs libraries outside Debian's base: $bad" >&2
  exit 1
fi
echo "install-check: the binary needs: $(tr '\n' ' ' <<<"$needed")"

runtime=$(swift -print-target-info | python3 -c 'import json,sys; print(json.load(sys.stdin)["paths"]["runtimeLibraryPaths"][0])')
[ -d "$runtime" ] || { echo "install-check: FAILED — no Swift runtime directory at $runtime" >&2; exit 1; }

# Runs inside the namespaces: the toolchain's runtime hidden, loopback only.
inner=$(cat <<'EOF'
set -euo pipefail
runtime=$1 bin=$2 debug_bin=$3 port=$4 out=$5
mount -t tmpfs -o size=1m none "$runtime"
ip link set lo up
if "$debug_bin" --version >"$out/debug.txt" 2>&1; then
  echo "install-check: FAILED — the shared-runtime binary started with $runtime hidden: the check proves nothing" >&2
  exit 1
fi
echo "install-check: the shared-runtime binary cannot start without the toolchain ($(head -c 120 "$out/debug.txt"))"
"$bin" --version
"$bin" --listen "127.0.0.1:$port" --log-level warn >"$out/agent.log" 2>&1 &
pid=$!
ok=""
for _ in $(seq 1 200); do
  if curl -s --max-time 2 "http://127.0.0.1:$port/metrics" >"$out/metrics.txt" 2>/dev/null \
     && grep -q '^egress_probe_runs_total{.*} [1-9]' "$out/metrics.txt"; then ok=1; break; fi
  sleep 0.1
done
[ -n "$ok" ] || { echo "install-check: FAILED — no probe results on /metrics within 20 s" >&2; cat "$out/agent.log" >&2; kill "$pid" || true; exit 1; }
grep -q '^egress_probe_failures_total{.*target="dockerhub".*phase="\(dns\|connect\)"' "$out/metrics.txt" || {
  echo "install-check: FAILED — Docker Hub's probe did not fail at dns or connect in an empty network namespace" >&2
  grep "^egress_probe_" "$out/metrics.txt" >&2 || true
  kill "$pid" || true; exit 1; }
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || { echo "install-check: FAILED — SIGTERM exit status $rc" >&2; exit 1; }
echo "install-check: the static binary ran on its default config with the toolchain hidden; $(grep -c '^egress_' "$out/metrics.txt") egress_ samples; SIGTERM -> exit 0"
EOF
)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
unshare -m -n --propagation private bash -c "$inner" inner "$runtime" "$bin" "$debug_bin" 19469 "$out"
echo "install-check: passed"
