#!/usr/bin/env bash
# Mutation runs (issue 17): applies a named break to a copy of the repository and runs the tests
# that should catch it. Exits 0 only if every one of them went red; 1 if one stayed green (the
# break was not caught: a test does not bite); 2 on a usage error or a break that does not apply
# or build.
#
#   bash Tests/Mutation/run.sh --list          # the breaks, with what each one breaks
#   bash Tests/Mutation/run.sh NAME            # e.g. reload-resets-counters
#   EGRESS_MUTATION_CONTROL=1 bash Tests/Mutation/run.sh NAME   # first the same tests unbroken,
#                                                               # which must pass
#
# A break is Tests/Mutation/breaks/NAME.patch: `# what:` says what it breaks, each `# catch:`
# line is a `swift test --filter` expression (or `sh: COMMAND`) that must fail with it applied,
# and a unified diff (git diff) follows. The copy lives in
# ${EGRESS_MUTATION_DIR:-/tmp/egress-mutation-$UID}; it is synced from this checkout (its files,
# not .build) before each run and keeps its own .build, so a run after the first (a full build:
# minutes) rebuilds only what the break touches. The checkout itself is never changed.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
breaks="$repo/Tests/Mutation/breaks"

if [ "${1:-}" = "--list" ]; then
  for f in "$breaks"/*.patch; do
    printf '%-36s %s\n' "$(basename "$f" .patch)" "$(sed -n 's/^# what: //p' "$f" | head -1)"
  done
  exit 0
fi
if [ $# -ne 1 ] || [ ! -f "$breaks/$1.patch" ]; then
  echo "usage: $0 --list | NAME (one of: $(cd "$breaks" && ls *.patch | sed 's/\.patch$//' | tr '\n' ' '))" >&2
  exit 2
fi
patch_file="$breaks/$1.patch"
mapfile -t catches < <(sed -n 's/^# catch: //p' "$patch_file")
if [ ${#catches[@]} -eq 0 ]; then
  echo "mutation: $patch_file names no '# catch:' filter" >&2
  exit 2
fi

copy="${EGRESS_MUTATION_DIR:-/tmp/egress-mutation-$(id -u)}"
mkdir -p "$copy"
# The checkout's files (tracked, and new ones not ignored) copied where they differ: a file keeps
# its inode, so the copy's .build rebuilds only what changed. .mutation-* (logs, the files the
# last break changed) stay in the copy between runs.
(cd "$repo" && git ls-files -co --exclude-standard) | while IFS= read -r f; do
  [ -f "$repo/$f" ] || continue
  if ! cmp -s "$repo/$f" "$copy/$f"; then
    mkdir -p "$copy/$(dirname "$f")"
    cp -p "$repo/$f" "$copy/$f"
  fi
done
cd "$copy"
# Files the previous break changed are back as they were, with their old mtimes: touched, so the
# build does not keep objects compiled from the broken version.
if [ -f .mutation-touched ]; then
  xargs -r touch <.mutation-touched 2>/dev/null || true
fi
sed -n 's|^+++ b/||p' "$patch_file" >.mutation-touched

run_catches() {
  local red=0 green=()
  for filter in "${catches[@]}"; do
    local ok=0
    if [[ $filter == "sh: "* ]]; then
      echo "mutation: ${filter#sh: }" >&2
      bash -c "${filter#sh: }" >"$copy/.mutation-$red.log" 2>&1 && ok=1
    else
      echo "mutation: swift test --filter '$filter'" >&2
      swift test --skip-build --filter "$filter" >"$copy/.mutation-$red.log" 2>&1 && ok=1
    fi
    [ $ok -eq 1 ] && green+=("$filter")
    red=$((red + 1))
  done
  printf '%s\n' "${green[@]}"
}

if [ "${EGRESS_MUTATION_CONTROL:-0}" = "1" ]; then
  swift build --build-tests >/dev/null 2>"$copy/.mutation-build.log" || { cat "$copy/.mutation-build.log" >&2; exit 2; }
  mapfile -t green < <(run_catches | grep -v '^$' || true)
  if [ ${#green[@]} -ne ${#catches[@]} ]; then
    echo "mutation: CONTROL FAILED: without the break these did not all pass: ${catches[*]}" >&2
    exit 2
  fi
  echo "mutation: control: every test passes without the break" >&2
fi

if ! patch -p1 --quiet --forward <"$patch_file"; then
  echo "mutation: $1 does not apply to this checkout (the code moved: refresh the patch)" >&2
  exit 2
fi
if ! swift build --build-tests >/dev/null 2>"$copy/.mutation-build.log"; then
  cat "$copy/.mutation-build.log" >&2
  echo "mutation: $1 does not build" >&2
  exit 2
fi
mapfile -t green < <(run_catches | grep -v '^$' || true)
if [ ${#green[@]} -gt 0 ]; then
  echo "mutation: $1 NOT CAUGHT: stayed green: ${green[*]} (logs: $copy/.mutation-*.log)" >&2
  exit 1
fi
echo "mutation: $1 caught: red in ${catches[*]}"
