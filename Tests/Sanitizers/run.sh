#!/usr/bin/env bash
# The whole test suite under AddressSanitizer and/or ThreadSanitizer (issue 5).
#
#   bash Tests/Sanitizers/run.sh                  # address, then thread
#   bash Tests/Sanitizers/run.sh thread           # one of them
#
# Runs the suite the way Tests/run.sh does — the unit tests in one `swift test` process, then
# each timing suite in a process of its own — built with `--sanitize=…` into a scratch path of its
# own (.build-asan, .build-tsan), so the normal .build is left alone. Prints passed/failed/skipped
# per suite and a summary line per sanitizer; exits non-zero on any failed test, any crashed
# process, or any sanitizer report.
#
# Sanitizer reports are written with log_path into <scratch>/sanitizer-logs/, one file per
# process, so that reports from processes the tests start (the egress-monitor binary in CLITests,
# OpsTests, ProcessTests, NamespaceTests; swift-testing exit tests re-running the test binary) are
# seen too: their stderr goes to pipes the tests read, not to this terminal. Each report is printed
# after the suite that produced it, and the output is grepped as well.
#
# Not run by Tests/run.sh: it builds the package twice more (1.5-2.5 minutes each from scratch) and
# then takes about 2 minutes per sanitizer. Findings and numbers: Tests/Sanitizers/README.md.
#
# Environment:
#   EGRESS_TEST_TIME_SCALE  multiplies the tests' timing allowances (not the product's timeouts);
#                           default 2 under address, 4 under thread.
#   EGRESS_SAN_LEAKS=1      turn LeakSanitizer on under address (off by default: it reports Swift
#                           values held by globals, and leaks of XCTest and Foundation, as leaks;
#                           see Tests/Sanitizers/README.md).
#   EGRESS_SAN_FILTER=X     run only the suites whose name matches X (extended regex).
set -uo pipefail
cd "$(dirname "$0")/../.."
source Tests/peers.sh   # the real peers the suites use, installed when missing

sanitizers=("$@")
[ ${#sanitizers[@]} -eq 0 ] && sanitizers=(address thread)
for s in "${sanitizers[@]}"; do
  case "$s" in address|thread) ;; *) echo "usage: $0 [address|thread ...]" >&2; exit 2 ;; esac
done

# The same split as Tests/run.sh, read from it: a copy here fell behind (ten timing suites added
# there ran here inside the one unit process, in parallel with each other).
eval "$(grep -m1 '^io_suites=' Tests/run.sh)"
[ -n "${io_suites:-}" ] || { echo "no io_suites line in Tests/run.sh" >&2; exit 2; }
report_pattern='ERROR: AddressSanitizer|ERROR: LeakSanitizer|WARNING: ThreadSanitizer|SUMMARY: (Address|Thread|Leak|UndefinedBehavior)Sanitizer|runtime error:'

overall=0
summaries=()
user_scale="${EGRESS_TEST_TIME_SCALE:-}"

# count PATTERN FILE: lines matching an extended regex (0 when none).
count() { grep -cE "$1" "$2" 2>/dev/null || true; }

for s in "${sanitizers[@]}"; do
  case "$s" in
    address) scratch=.build-asan; scale_default=2 ;;
    thread)  scratch=.build-tsan; scale_default=4 ;;
  esac
  started=$(date +%s)
  logs="$scratch/sanitizer-logs"
  rm -rf "$logs"; mkdir -p "$logs"
  export EGRESS_TEST_TIME_SCALE="${user_scale:-$scale_default}"

  echo "== $s: building into $scratch"
  if ! swift build --build-tests --sanitize="$s" --scratch-path "$scratch" > "$logs/build.out" 2>&1; then
    tail -40 "$logs/build.out"
    echo "sanitizer $s: BUILD FAILED" >&2
    overall=1; summaries+=("$s: build failed"); continue
  fi

  runs=("unit")
  for suite in ${io_suites//|/ }; do runs+=("$suite"); done
  tp=0; tf=0; ts=0; treports=0; bad=()
  for run in "${runs[@]}"; do
    if [ -n "${EGRESS_SAN_FILTER:-}" ] && ! [[ "$run" =~ ${EGRESS_SAN_FILTER} ]]; then continue; fi
    out="$logs/$run.out"
    # Reports go to files, one per process, in a directory per run; halt_on_error=0 for TSan
    # so that one run lists every race.
    mkdir -p "$logs/$run"
    export ASAN_OPTIONS="log_path=$PWD/$logs/$run/asan:detect_leaks=${EGRESS_SAN_LEAKS:-0}"
    export TSAN_OPTIONS="log_path=$PWD/$logs/$run/tsan:halt_on_error=0:second_deadlock_stack=1"
    t0=$(date +%s)
    if [ "$run" = unit ]; then
      swift test --skip-build --sanitize="$s" --scratch-path "$scratch" --skip "$io_suites" > "$out" 2>&1
    else
      swift test --skip-build --sanitize="$s" --scratch-path "$scratch" --filter "$run" > "$out" 2>&1
    fi
    rc=$?
    secs=$(( $(date +%s) - t0 ))
    # swift-testing prints one line per test function (not per argument case).
    p=$(grep -E '^✔ Test ' "$out" | grep -vcE '^✔ Test (run with|case )' || true)
    f=$(grep -E '^✘ Test .* failed after' "$out" | grep -vcE '^✘ Test (run with|case )' || true)
    k=$(grep -E '^➜ Test .* skipped' "$out" | grep -vcE '^➜ Test case ' || true)
    # XCTest, should any appear: "Executed N tests, with F failures".
    # Reports: in the output itself, and in the per-process log files written since.
    newlogs=$(ls "$logs/$run")
    r=$(count "$report_pattern" "$out")
    for l in $newlogs; do r=$(( r + $(count '^(==[0-9]+==)?(ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer)' "$logs/$run/$l") )); done
    status=ok
    if [ "$rc" -ne 0 ] || [ "$f" -gt 0 ] || [ "$r" -gt 0 ]; then status=FAILED; bad+=("$run"); fi
    if [ "$rc" -ne 0 ] && ! grep -qE '^(✔|✘) Test run with' "$out"; then status="FAILED (process ended without a summary, exit $rc)"; fi
    printf '%-18s passed %4d  failed %3d  skipped %3d  reports %3d  %5ds  %s\n' "$run" "$p" "$f" "$k" "$r" "$secs" "$status"
    if [ "$f" -gt 0 ]; then grep -E '^✘ Test .* (failed after|recorded an issue)' "$out" | grep -v '^✘ Test run' | head -20 | sed 's/^/    /'; fi
    for l in $newlogs; do
      echo "    --- $logs/$run/$l"; sed -n '1,60p' "$logs/$run/$l" | sed 's/^/    /'
    done
    if grep -qE "$report_pattern" "$out"; then grep -nE -m5 "$report_pattern" "$out" | sed 's/^/    /'; fi
    tp=$((tp + p)); tf=$((tf + f)); ts=$((ts + k)); treports=$((treports + r))
  done
  wall=$(( $(date +%s) - started ))
  line="sanitizer $s: passed $tp, failed $tf, skipped $ts, sanitizer reports $treports, wall ${wall}s (time scale $EGRESS_TEST_TIME_SCALE)"
  if [ ${#bad[@]} -gt 0 ]; then line+=" — FAILED: ${bad[*]}"; overall=1; fi
  echo "$line"
  summaries+=("$line")
done

echo "== summary"
printf '%s\n' "${summaries[@]}"
exit $overall
