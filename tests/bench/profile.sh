#!/usr/bin/env bash
# Where ferryd spends its time on the benchmark's hot paths. Companion to run.sh.
#
#   tests/bench/profile.sh perf       # perf record (cpu-clock, user + kernel) of ferryd under wrk -c32
#   tests/bench/profile.sh callgrind  # instruction counts (user space only) under valgrind
#
# Both profile ferryd with [server] threads = 1 in front of ferry-mock-upstream
# (--words 20), non-streaming and streaming, with access_log = false: the
# configuration of run.sh's sections A-C. Reports go to $PROFILE_OUT
# (default: a new /tmp/ferry-profile.XXXXXX) and a summary to stdout.
#
# perf:      perf record -e cpu-clock -F 2999 -p FERRYD -- sleep $PROFILE_SECONDS   (while wrk -t1 -c32 runs)
#            perf report --no-children --sort dso,symbol
# callgrind: valgrind --tool=callgrind ferryd ...; wrk -t1 -c4 -d${PROFILE_SECONDS}s; then SIGTERM
#            callgrind_annotate (self) and callgrind_annotate --inclusive=yes
#            (BENCH_SSE sends streaming requests with ferry-bench-sse instead of wrk)
#
# Environment: FERRY_BUILD_DIR (default build), PROFILE_SECONDS (default 8),
# BENCH_PIN (1 = ferryd on core 0, load + mock on core 1; default 1).
# Needs perf (apt-get install linux-perf) or valgrind.
set -euo pipefail

mode=${1:-perf}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${FERRY_BUILD_DIR:-build}
[[ $build = /* ]] || build="$root/$build"
secs=${PROFILE_SECONDS:-8}
out=${PROFILE_OUT:-$(mktemp -d /tmp/ferry-profile.XXXXXX)}
mkdir -p "$out"
ferryd=$build/host/ferryd
mock=$build/tests/mock_upstream/ferry-mock-upstream
[[ -x $ferryd && -x $mock ]] || { echo "no ferryd / ferry-mock-upstream in $build: build first (host/setup.sh test)" >&2; exit 1; }
on0="" on1=""
if [[ ${BENCH_PIN:-1} = 1 && $(nproc) -ge 2 ]]; then on0="taskset -c 0"; on1="taskset -c 1"; fi
ulimit -n "$(ulimit -Hn)"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

$on1 "$mock" --listen 127.0.0.1:0 --threads 1 --words 20 >"$out/mock.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q '^listening' "$out/mock.out" && break; sleep 0.05; done
mport=$(sed -n 's/^listening .*:\([0-9]*\)$/\1/p' "$out/mock.out")
cat >"$out/ferry.toml" <<EOF
plugin_dirs = ["$build/plugins"]
[server]
listen = "127.0.0.1:0"
threads = 1
[log]
level = "info"
access_log = false
[providers.up]
plugin = "openai"
base_url = "http://127.0.0.1:$mport/v1"
[pipelines.bench]
models = ["bench"]
providers = ["up"]
router = "priority"
EOF

start_ferryd() {  # [wrapper...]
  $on0 "$@" "$ferryd" --config "$out/ferry.toml" --admin-listen off 2>"$out/ferryd.log" &
  FPID=$!
  pids+=("$FPID")
  for _ in $(seq 600); do grep -q 'ready: listening' "$out/ferryd.log" && break; sleep 0.1; done
  FPORT=$(sed -n 's/.*ready: listening on [^ ]*:\([0-9]*\) .*/\1/p' "$out/ferryd.log")
  [[ -n $FPORT ]] || { echo "ferryd did not start: $(cat "$out/ferryd.log")" >&2; exit 1; }
}
url() { echo "http://127.0.0.1:$FPORT/v1/chat/completions"; }
summarize() {  # N: first N rows of a perf report, padding removed
  grep -v '^#' | grep -v '^$' | sed 's/ *$//' | cut -c1-200 | head -"$1" || true
}

case $mode in
  perf)
    command -v perf >/dev/null || { echo "perf is missing: apt-get install linux-perf" >&2; exit 1; }
    start_ferryd
    for kind in chat stream; do
      $on1 wrk -t1 -c32 -d"$((secs + 2))s" -s "$here/$kind.lua" "$(url)" >"$out/wrk.$kind.txt" 2>&1 &
      wpid=$!
      sleep 1
      perf record -q -e cpu-clock -F 2999 -p "$FPID" -o "$out/perf.$kind.data" -- sleep "$secs" 2>/dev/null
      wait "$wpid" || true
      perf report -i "$out/perf.$kind.data" --no-children --sort dso --stdio 2>/dev/null >"$out/perf.$kind.dso.full" || true
      perf report -i "$out/perf.$kind.data" --no-children --sort dso,symbol --stdio 2>/dev/null >"$out/perf.$kind.sym.full" || true
      summarize 12 <"$out/perf.$kind.dso.full" >"$out/perf.$kind.dso.txt"
      summarize 40 <"$out/perf.$kind.sym.full" >"$out/perf.$kind.sym.txt"
      echo "== perf, ferryd, wrk -c32 $kind.lua ($(grep -o '"rps":[0-9.]*' "$out/wrk.$kind.txt")): by DSO"
      cat "$out/perf.$kind.dso.txt"
      echo "== by symbol (self)"
      cat "$out/perf.$kind.sym.txt"
    done
    ;;
  callgrind)
    command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }
    for kind in chat stream; do
      start_ferryd valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.$kind.%p" --separate-threads=no
      if [[ $kind = chat || -z ${BENCH_SSE:-} ]]; then
        $on1 wrk -t1 -c4 -d"${secs}s" -s "$here/$kind.lua" "$(url)" >"$out/load.$kind.txt" 2>&1 || true
      else
        $on1 "$BENCH_SSE" --target "127.0.0.1:$FPORT" --concurrency 4 --requests 1000 >"$out/load.$kind.txt" 2>&1 || true
      fi
      kill -TERM "$FPID"
      wait "$FPID" || true
      f=$(compgen -G "$out/callgrind.$kind.*" | head -1)
      callgrind_annotate "$f" 2>/dev/null >"$out/callgrind.$kind.self.full" || true
      callgrind_annotate --inclusive=yes "$f" 2>/dev/null >"$out/callgrind.$kind.incl.full" || true
      head -45 "$out/callgrind.$kind.self.full" | cut -c1-200 >"$out/callgrind.$kind.self.txt"
      head -70 "$out/callgrind.$kind.incl.full" | cut -c1-200 >"$out/callgrind.$kind.incl.txt"
      echo "== callgrind, ferryd, $kind ($(grep -o '"requests":[0-9]*' "$out/load.$kind.txt" | head -1) under valgrind): self"
      cat "$out/callgrind.$kind.self.txt"
      echo "== inclusive"
      cat "$out/callgrind.$kind.incl.txt"
    done
    ;;
  *) echo "usage: $0 perf|callgrind" >&2; exit 2 ;;
esac
echo "raw profiles in $out" >&2
