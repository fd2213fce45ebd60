#!/usr/bin/env bash
# The soak (issue 5): at least a million probes, back to back with bounded concurrency, across a
# subset of the fault matrix — refused, reset after the ClientHello, a stall with a 50 ms
# timeout, NXDOMAIN, SERVFAIL, garbage for a ServerHello, an expired certificate, HTTP 429 and
# 503, and a healthy docker-registry — printing resident memory, open descriptors and parked
# reactor waiters at the start, the middle and the end (and every 100,000 probes). They must
# stay flat; the test fails when descriptors or memory grow.
#
#   bash Tests/Soak/run.sh                 # 1,000,000 probes, 32 in flight
#   bash Tests/Soak/run.sh 200000 64
#
# Not part of CI (it takes a while). Builds the tests in release mode (with -enable-testing)
# into .build-soak and runs SoakTests only; every peer is on loopback.
set -euo pipefail
cd "$(dirname "$0")/../.."
source Tests/peers.sh   # the real peers the suites use, installed when missing
probes=${1:-1000000}
concurrency=${2:-32}
scratch=${SOAK_SCRATCH:-.build-soak}

swift build -c release -Xswiftc -enable-testing --build-tests --scratch-path "$scratch"
EGRESS_SOAK_PROBES=$probes EGRESS_SOAK_CONCURRENCY=$concurrency \
  swift test -c release -Xswiftc -enable-testing --scratch-path "$scratch" --skip-build --filter SoakTests 2>&1 \
  | grep -E "soak:|✔|✘|Expectation|error" 
