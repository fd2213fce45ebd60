#!/usr/bin/env bash
# Builds every libFuzzer harness (Tests/Fuzz/build.sh) and runs each for a bounded time, from
# its seed corpus, printing the executions run and the crashes found. Exit status 1 when any
# harness crashed (the input is kept as .build-fuzz/artifacts/<harness>-crash-*), 0 otherwise.
#
#   bash Tests/Fuzz/run.sh              # 60 s per harness
#   bash Tests/Fuzz/run.sh 20           # 20 s per harness (what CI runs)
#   bash Tests/Fuzz/run.sh 300 dns_message http_response
#
# Seeds are in Tests/Fuzz/corpus/<harness>/ and are only read; what a run discovers goes to
# .build-fuzz/corpus/<harness>/, so later runs start from there. To replay a crash:
#   .build-fuzz/fuzz-<harness> .build-fuzz/artifacts/<harness>-crash-<sha1>
set -uo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
shift || true
all="dns_message http_response http_request www_authenticate socks_reply connect_reply config json doh_response"
harnesses=${*:-$all}
out=${FUZZ_BUILD_DIR:-.build-fuzz}

# shellcheck disable=SC2086
bash Tests/Fuzz/build.sh $harnesses || { echo "fuzz: build failed" >&2; exit 2; }

failed=0
total=0
printf '%-18s %12s %8s %s\n' harness executions crashes note
for h in $harnesses; do
  mkdir -p "$out/corpus/$h" "$out/artifacts" "$out/logs"
  log="$out/logs/$h.log"
  # -timeout: an input running 10 s is a hang, reported like a crash. Leak detection off: the
  # Swift runtime's caches live until exit by design.
  "$out/fuzz-$h" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=16384 \
    -detect_leaks=0 -print_final_stats=1 -artifact_prefix="$out/artifacts/$h-" \
    "$out/corpus/$h" "Tests/Fuzz/corpus/$h" >"$log" 2>&1
  status=$?
  runs=$(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  runs=${runs:-$(grep -o '#[0-9]*' "$log" | tail -1 | tr -d '#')}
  runs=${runs:-0}
  total=$((total + runs))
  crashes=0
  note=""
  if [ $status -ne 0 ]; then
    crashes=1
    failed=1
    artifact=$(grep -o "Test unit written to [^ ]*" "$log" | tail -1 | sed 's/Test unit written to //')
    reason=$(grep -m1 -E "ERROR: (AddressSanitizer|libFuzzer)|Fatal error|deadly signal|precondition|timeout after" "$log" | cut -c1-120)
    note="${reason:-exit $status} ${artifact:+-> $artifact}"
  fi
  printf '%-18s %12s %8s %s\n' "$h" "$runs" "$crashes" "$note"
done
echo "fuzz: $total executions in total; logs in $out/logs/"
if [ $failed -ne 0 ]; then
  echo "fuzz: CRASH found: see the notes above and the logs" >&2
  exit 1
fi
