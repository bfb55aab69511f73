#!/usr/bin/env bash
# The chaos run of BENCHMARKS.md: 10,000 requests through ferryd over three
# upstreams, one killed at 30 % of the run and restarted at 60 %, one failing
# half of its requests, one slow (20 ms). It is the suite's Chaos test
# (tests/integration/chaos_test.cpp) with more requests; it prints one line
# "chaos: requests=... failures=... p50_ms=... p99_ms=..." and fails if any
# request failed.
#
#   tests/bench/chaos.sh              # FERRY_BUILD_DIR (default build), CHAOS_REQUESTS (default 10000)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${FERRY_BUILD_DIR:-build}
[[ $build = /* ]] || build="$root/$build"
CHAOS_REQUESTS=${CHAOS_REQUESTS:-10000} \
  "$build/tests/integration/ferry_integration_tests" --gtest_filter='Chaos.*' | grep -E '^chaos:|PASSED|FAILED'
