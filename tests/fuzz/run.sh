#!/usr/bin/env bash
# Runs every fuzz target for a bounded time, two at a time, on a copy of its
# seed corpus (the tree is never written to). Builds nothing: configure and
# build the fuzz directory first (tests/fuzz/README.md).
#
#   tests/fuzz/run.sh [SECONDS]        default 60 seconds per target
#
# Environment:
#   FERRY_FUZZ_BUILD_DIR  the fuzz build (default build-fuzz; relative paths are
#                         taken from the repository root)
#   FERRY_FUZZ_PARALLEL   targets at once (default 2)
#   FERRY_FUZZ_TARGETS    a space-separated subset (default: all)
#
# Prints one line per target and exits 1 if any target crashed (or failed to
# start); the crash file and the log with its stack stay in the work directory
# the summary names.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-60}
if ! [[ $seconds =~ ^[0-9]+$ ]] || [[ $seconds -eq 0 ]]; then
  echo "usage: $0 [SECONDS]   (a positive number of seconds per target)" >&2
  exit 2
fi
build=${FERRY_FUZZ_BUILD_DIR:-build-fuzz}
[[ $build == /* ]] || build=$root/$build
parallel=${FERRY_FUZZ_PARALLEL:-2}

# target and the longest input worth trying: a config, an SSE stream or a
# JSON document stays small; a request head must be able to pass ferryd's
# 64 KiB header limit.
declare -A max_len=(
  [json_differential]=16384
  [sse_split]=4096
  [toml_config]=8192
  [http_request_head]=73728
  [adapter_openai]=16384
  [adapter_anthropic]=16384
)
all_targets=(json_differential sse_split toml_config http_request_head adapter_openai adapter_anthropic)
read -r -a targets <<<"${FERRY_FUZZ_TARGETS:-${all_targets[*]}}"

for t in "${targets[@]}"; do
  if [[ -z ${max_len[$t]:-} ]]; then
    echo "unknown fuzz target '$t' (known: ${all_targets[*]})" >&2
    exit 2
  fi
  if [[ ! -x $build/tests/fuzz/$t ]]; then
    echo "$build/tests/fuzz/$t is missing: build it first, e.g." >&2
    echo "  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_FUZZ=ON" >&2
    echo "  cmake --build build-fuzz --target ferry_fuzz -j 2" >&2
    exit 2
  fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-fuzz.XXXXXX")
# Stack traces that name files and lines; a UBSan finding stops the run
# (the build has -fno-sanitize-recover=undefined).
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

# One target: its own corpus copy, artifacts and log under $work/<target>/.
run_one() {
  local t=$1 dir=$work/$1
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp "$root/tests/fuzz/corpus/$t/"* "$dir/corpus/" 2>/dev/null
  local start=$SECONDS rc=0
  (cd "$dir" && exec "$build/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len="${max_len[$t]}" -print_final_stats=1 -artifact_prefix="$dir/artifacts/" \
    "$dir/corpus" >"$dir/log" 2>&1) || rc=$?
  echo "$rc $((SECONDS - start))" >"$dir/status"
}

summary() {
  local t=$1 dir=$work/$1 rc elapsed
  read -r rc elapsed <"$dir/status"
  local runs cov corpus execs
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  execs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$dir/log" | tail -1)
  corpus=$(grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' "$dir/log" | tail -1)
  if [[ $rc -eq 0 ]]; then
    printf '%-18s ok     %4ss  %9s runs  %6s/s  %-22s %s\n' "$t" "$elapsed" "${runs:-?}" "${execs:-?}" \
      "${cov:-cov: ?}" "${corpus:-}"
    return 0
  fi
  local crash
  crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$dir/log" | tail -1)
  local why
  why=$(grep -m1 -oE '(ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer): [a-zA-Z-]+|runtime error: .*|==ferry-fuzz== invariant broken: .*)' "$dir/log")
  printf '%-18s CRASH  %4ss  exit %s  %s\n' "$t" "$elapsed" "$rc" "${why:-see the log}"
  printf '%-18s        crash file: %s\n' "" "${crash:-none written}"
  printf '%-18s        log:        %s\n' "" "$dir/log"
  return 1
}

echo "fuzzing ${#targets[@]} targets for ${seconds}s each, $parallel at a time, in $work" >&2
running=0
for t in "${targets[@]}"; do
  if [[ $running -ge $parallel ]]; then
    wait -n
    running=$((running - 1))
  fi
  run_one "$t" &
  running=$((running + 1))
done
wait

failed=0
for t in "${targets[@]}"; do summary "$t" || failed=1; done
if [[ $failed -eq 0 ]]; then
  rm -rf "$work"
  exit 0
fi
echo "a fuzz target failed: reproduce with <build>/tests/fuzz/<target> <crash file>; the logs are in $work" >&2
exit 1
