#!/usr/bin/env bash
# Builds the libFuzzer harnesses, one executable per harness, with swiftc directly: the package's
# modules (EgressNet; EgressMetrics and EgressMonitor for the config and json harnesses) are compiled from
# Sources/ (with EgressSync, the lock they share) with coverage instrumentation (-sanitize=fuzzer)
# and AddressSanitizer, into .build-fuzz/, and linked with each harness. Package.swift is not
# touched, so `swift build` never builds these.
#
#   bash Tests/Fuzz/build.sh                # every harness
#   bash Tests/Fuzz/build.sh dns_message    # some
#
# A module is rebuilt only when a file of its sources (or of a module it imports) is newer than
# its object. Executables: .build-fuzz/fuzz-<harness>. Harnesses: Tests/Fuzz/harnesses/<name>.swift
# (memory_stream.swift is shared by the proxy handshake harnesses).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${FUZZ_BUILD_DIR:-.build-fuzz}
mkdir -p "$out"

all_harnesses="dns_message http_response http_request www_authenticate socks_reply connect_reply config json doh_response"
harnesses=${*:-$all_harnesses}

# -O keeps Swift's own traps (bounds, overflow, preconditions): a trap is a crash to libFuzzer.
flags=(-O -g -swift-version 6 -parse-as-library -sanitize=fuzzer,address
       -I "$out" -I Sources/COpenSSL -I Sources/CLinux -I Sources/CZlib)
# Debian's OpenSSL headers are in /usr/include; another prefix comes from pkg-config.
for f in $(pkg-config --cflags-only-I openssl 2>/dev/null); do flags+=(-Xcc "$f"); done
libs=(-lssl -lcrypto -lcrypt -lz)

# module NAME DEPS...: compiles Sources/NAME into $out/NAME.o and NAME.swiftmodule when stale.
module() {
  local name=$1; shift
  local object="$out/$name.o"
  local sources
  sources=$(find "Sources/$name" -name '*.swift' | sort)
  local stale=0
  [ -f "$object" ] || stale=1
  if [ $stale -eq 0 ]; then
    for dep in "Sources/$name" "Sources/COpenSSL" "Sources/CLinux" "Sources/CZlib" "$@"; do
      [ -e "$dep" ] || continue
      if [ -n "$(find "$dep" -newer "$object" -print -quit)" ]; then stale=1; break; fi
    done
  fi
  [ $stale -eq 1 ] || return 0
  echo "fuzz: compiling module $name" >&2
  rm -f "$object"
  # shellcheck disable=SC2086
  swiftc "${flags[@]}" -wmo -module-name "$name" -emit-module -emit-module-path "$out/$name.swiftmodule" \
    -c -o "$object" $sources 2>&1 | grep -v "warning: Cannot export local symbol" >&2 || true
  [ -f "$object" ] || { echo "fuzz: module $name failed to compile" >&2; exit 1; }
}

needs_monitor=0
for h in $harnesses; do case $h in config|json) needs_monitor=1 ;; esac; done
module EgressSync
module EgressNet "$out/EgressSync.o"
if [ $needs_monitor -eq 1 ]; then
  module EgressMetrics "$out/EgressSync.o"
  module EgressMonitor "$out/EgressNet.o" "$out/EgressMetrics.o" "$out/EgressSync.o"
fi

for h in $harnesses; do
  src="Tests/Fuzz/harnesses/$h.swift"
  [ -f "$src" ] || { echo "fuzz: no harness $src" >&2; exit 2; }
  extra=()
  objects=("$out/EgressNet.o" "$out/EgressSync.o")
  case $h in
    socks_reply|connect_reply|doh_response) extra=(Tests/Fuzz/harnesses/memory_stream.swift) ;;
    config|json) objects=("$out/EgressMonitor.o" "$out/EgressMetrics.o" "$out/EgressNet.o" "$out/EgressSync.o") ;;
  esac
  exe="$out/fuzz-$h"
  if [ -f "$exe" ] && [ -z "$(find "$src" "${extra[@]}" "${objects[@]}" -newer "$exe" -print -quit)" ]; then
    continue
  fi
  echo "fuzz: linking $exe" >&2
  rm -f "$exe"
  swiftc "${flags[@]}" -module-name "fuzz_$h" "$src" "${extra[@]}" "${objects[@]}" "${libs[@]}" -o "$exe" 2>&1 \
    | grep -v "warning: Cannot export local symbol" >&2 || true
  [ -x "$exe" ] || { echo "fuzz: $h failed to build" >&2; exit 1; }
done
