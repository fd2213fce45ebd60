#!/usr/bin/env bash
# The whole test suite, as a new user and CI run it: installs the Debian packages the tests use
# as real peers when they are missing, builds, and runs every test.
#
#   bash Tests/run.sh            # everything
#   bash Tests/run.sh --filter TLSTests   # extra arguments go to `swift test`
set -euo pipefail
cd "$(dirname "$0")/.."

# The peers (nginx, dnsmasq, docker-registry, tinyproxy, ...): installed when missing.
source Tests/peers.sh
# The tests start their own instances of these on free loopback ports; a service Debian may
# have started on install does not get in their way.

swift build --build-tests
if [ $# -gt 0 ]; then
  exec swift test --skip-build "$@"
fi
# Two runs: the CPU-bound unit tests (parsers fed byte by byte, exit tests that start the test
# binary again) first, then the suites that measure time against real peers. Run together on two
# cores, the first kind starves Swift's cooperative pool and turns the second kind's deadline
# checks into measurements of the machine's load.
io_suites='ProbeTests|SocketTests|TLSTests|LabTests|AgentTests|NamespaceTests|OpsTests|PathTests|RegistryTests|CLITests|ReportTests|ServerTests|ProcessTests|FaultMatrixTests|VerdictTests|DockerJudgeTests|ManageApplyTests|ManageDockerTests|ActionRunnerTests|ActionLiveTests|ActionRouteDockerTests'
swift test --skip-build --skip "$io_suites"
# Each timing suite in a process of its own: one suite's CPU work (hashing blobs, signing
# tokens) cannot delay another's in-process peers past their deadlines.
failed=()
for suite in ${io_suites//|/ }; do
  swift test --skip-build --filter "$suite" || failed+=("$suite")
done

# ---- The install recipe: the release binary with the Swift runtime linked in runs where no
# toolchain is installed (a mount namespace hides it), on its embedded default config.
bash Tests/Install/check.sh || failed+=("install")

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
