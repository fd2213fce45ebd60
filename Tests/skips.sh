#!/usr/bin/env bash
# Lists the tests a run skipped, from its output (swift test's "Test … skipped: …" and
# "Suite … skipped: …" lines, and the scripts' "SKIPPED" lines), loudly on stderr. When `CI` is
# set (.ci/run sets it), any skip fails: exit 1. A CI machine that is not root, or lacks a peer,
# would otherwise skip the namespace, nft and install tests and stay green.
#
#   bash Tests/skips.sh LOG      # Tests/run.sh runs it on the output of its test runs
set -euo pipefail
log=$1
# Colour codes out; one line per skipped test: swift-testing's `➜ Test NAME skipped: "why"` (or
# `skipped.`) and the scripts' `NAME: SKIPPED ...` (a test *named* "... is skipped" is no skip).
skips=$(sed 's/\x1b\[[0-9;]*m//g' "$log" \
  | grep -E '^➜ (Test|Suite) .+ skipped(: ".*"|\.)$|^[A-Za-z0-9_-]+: SKIPPED' | sed 's/^➜ //' | sort -u || true)
[ -z "$skips" ] && exit 0
count=$(printf '%s\n' "$skips" | wc -l)
{
  echo "tests: ==================== $count SKIPPED (not passed) ===================="
  printf '%s\n' "$skips" | sed 's/^/tests:   /'
  echo "tests: ================================================================"
} >&2
if [ -n "${CI:-}" ]; then
  echo "tests: CI is set: a skipped test fails the run (run as root with every peer installed)" >&2
  exit 1
fi
