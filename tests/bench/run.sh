#!/usr/bin/env bash
# Ferry benchmarks in one command. Prints markdown tables on stdout and progress
# on stderr; the exact commands go to $BENCH_OUT/commands.log and the raw
# outputs stay next to it.
#
#   host/setup.sh test        # or: cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build
#   tests/bench/run.sh        # ~10 minutes with the defaults
#
# What it does:
#   - installs wrk with apt-get if it is missing;
#   - uses the Release build in $FERRY_BUILD_DIR (ferryd, ferry-mock-upstream, the
#     plugins) and builds ferry-bench-sse there (cmake --build "$build" --target
#     ferry-bench-sse), unless FERRY_BENCH_SSE points at a binary;
#   - starts ferry-mock-upstream and ferryd (generated config: provider "up" =
#     openai plugin with base_url http://MOCK/v1, pipeline serving model "bench",
#     no middleware, [log] access_log = false) and measures:
#       A. non-streaming, wrk --latency, 1 and 32 connections, straight to the
#          mock and through ferryd;
#       B. streaming, wrk (req/s), same four cases;
#       C. streaming TTFB, ferry-bench-sse, same four cases;
#       D. A through ferryd again with [log] access_log = true;
#       E. $BENCH_STREAMS concurrent SSE streams through ferryd, mock at
#          --chunk-delay-ms 100 --words 50 (each stream ~5 s), ferry-bench-sse --hold;
#          errors, max open streams, ferryd VmHWM, RSS and CPU per stream, and
#          the kernel's listen-queue overflows and TCP retransmissions;
#       F. the same with the in-process mock provider (plugin = "mock",
#          tokens_per_second = 10, 50-word replies): no upstream sockets.
#   Every case runs $BENCH_RUNS times (interleaved) and the median of each
#   column is reported.
#
# The commands it runs (PORT_M = mock, PORT_F = ferryd; see $BENCH_OUT/commands.log):
#   ferry-mock-upstream --listen 127.0.0.1:0 --threads 1 --words 20
#   ferryd --config $BENCH_OUT/ferry-bench.toml
#   wrk -t1 -c{1,32} -d${BENCH_DURATION}s --latency -s tests/bench/chat.lua   http://127.0.0.1:{PORT_M,PORT_F}/v1/chat/completions
#   wrk -t1 -c{1,32} -d${BENCH_DURATION}s --latency -s tests/bench/stream.lua http://127.0.0.1:{PORT_M,PORT_F}/v1/chat/completions
#   ferry-bench-sse --target 127.0.0.1:{PORT_M,PORT_F} --model bench --concurrency {1,32} --requests {3000,30000}
#   ferry-mock-upstream --listen 127.0.0.1:0 --threads 1 --words 50 --chunk-delay-ms 100
#   ferry-bench-sse --target 127.0.0.1:PORT_F --model bench --concurrency 5000 --requests 5000 --hold --timeout-s 120
#   ferry-bench-sse --target 127.0.0.1:PORT_F --model bench --concurrency 5000 --requests 5000 --hold --timeout-s 120 --body-words 47
#       (mock provider: "Ferry mock reply:" + 47 words = 50 tokens at 10/s)
#
# CPU placement (BENCH_PIN=1, the default, on a machine with 2+ cores):
#   ferryd ([server] threads = 1) on core 0; in through-ferryd runs the load
#   generator (wrk -t1 or ferry-bench-sse) and the mock share core 1. In
#   straight-to-mock runs the mock has core 1 and the load generator core 0.
#   So every case gets both cores; through-ferryd cases run three processes on
#   them, which makes the through/direct ratios conservative.
#   BENCH_PIN=0: no taskset, ferryd threads = 0 (one per core).
#   BENCH_PIN=one: everything on core 0, ferryd threads = 1. Every hop is then a
#   same-core context switch instead of a cross-core wake-up, which on a VM
#   costs tens of µs (an IPI through the hypervisor); use it to see ferryd's
#   own share of the latency.
#
# Environment:
#   FERRY_BUILD_DIR  Release build directory (default: build)
#   FERRY_BENCH_SSE  ferry-bench-sse binary (default: $FERRY_BUILD_DIR/tests/bench/ferry-bench-sse)
#   BENCH_RUNS       repetitions per case (default 3)
#   BENCH_DURATION   seconds per wrk run (default 10)
#   BENCH_STREAMS    concurrent streams in E and F (default 5000)
#   BENCH_PIN        1 = pin with taskset (default), 0 = do not, one = all on core 0
#   BENCH_SECTIONS   which of A B C D E F to run (default "A B C D E F")
#   BENCH_OUT        directory for raw outputs (default: a new /tmp/ferry-bench.XXXXXX)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${FERRY_BUILD_DIR:-build}
[[ $build = /* ]] || build="$root/$build"
runs=${BENCH_RUNS:-3}
duration=${BENCH_DURATION:-10}
streams=${BENCH_STREAMS:-5000}
pin=${BENCH_PIN:-1}
sections=${BENCH_SECTIONS:-"A B C D E F"}
out=${BENCH_OUT:-$(mktemp -d /tmp/ferry-bench.XXXXXX)}
mkdir -p "$out"

say() { echo "run.sh: $*" >&2; }
die() { say "$*"; exit 1; }
want() { [[ " $sections " == *" $1 "* ]]; }

# ---- tools
if ! command -v wrk >/dev/null; then
  say "installing wrk"
  sudo_=""
  [[ $(id -u) = 0 ]] || sudo_=sudo
  $sudo_ apt-get update -qq && $sudo_ apt-get install -y -qq wrk >/dev/null
fi
ferryd=$build/host/ferryd
mock=$build/tests/mock_upstream/ferry-mock-upstream
[[ -x $ferryd && -x $mock ]] ||
  die "no ferryd or ferry-mock-upstream in $build: run host/setup.sh test (or cmake --build $build) first, or set FERRY_BUILD_DIR"
if grep -q '^CMAKE_BUILD_TYPE:STRING=' "$build/CMakeCache.txt" 2>/dev/null &&
  ! grep -q '^CMAKE_BUILD_TYPE:STRING=Release' "$build/CMakeCache.txt"; then
  say "warning: $build is not a Release build; figures will not be representative"
fi
if [[ -n ${FERRY_BENCH_SSE:-} ]]; then
  bench=$FERRY_BENCH_SSE
else
  cmake --build "$build" --target ferry-bench-sse >&2 ||
    die "cannot build ferry-bench-sse in $build (is tests/bench in the build? set FERRY_BENCH_SSE to a binary)"
  bench=$build/tests/bench/ferry-bench-sse
fi
[[ -x $bench ]] || die "no ferry-bench-sse at $bench"

ulimit -n "$(ulimit -Hn)"
(( $(ulimit -n) >= 2 * streams + 100 )) || say "warning: ulimit -n is $(ulimit -n); $streams streams need ~$((2 * streams)) descriptors in ferryd"

ncpu=$(nproc)
if [[ $pin = 1 && $ncpu -ge 2 ]]; then
  on0="taskset -c 0"
  on1="taskset -c 1"
  ferry_threads=1
elif [[ $pin = one ]]; then
  on0="taskset -c 0"
  on1="taskset -c 0"
  ferry_threads=1
else
  on0=""
  on1=""
  ferry_threads=0
fi

# ---- processes
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

log_cmd() { echo "$*" >>"$out/commands.log"; }

# start_mock ARGS... -> MOCK_PID, MOCK_PORT (on core 1)
start_mock() {
  next_file mock.out
  local f=$FILE
  log_cmd "$on1 $mock --listen 127.0.0.1:0 --threads 1 $*"
  $on1 "$mock" --listen 127.0.0.1:0 --threads 1 "$@" >"$f" 2>&1 &
  MOCK_PID=$!
  pids+=("$MOCK_PID")
  for _ in $(seq 100); do grep -q '^listening' "$f" && break; sleep 0.05; done
  MOCK_PORT=$(sed -n 's/^listening .*:\([0-9]*\)$/\1/p' "$f")
  [[ -n $MOCK_PORT ]] || die "mock did not start: $(cat "$f")"
}

# write_config FILE ACCESS_LOG(true|false) PROVIDER(openai|mock)
write_config() {
  local provider
  if [[ $3 = openai ]]; then
    provider="plugin = \"openai\"
base_url = \"http://127.0.0.1:$MOCK_PORT/v1\""
  else
    provider="plugin = \"mock\"
tokens_per_second = 10"
  fi
  cat >"$1" <<EOF
# generated by tests/bench/run.sh
plugin_dirs = ["$build/plugins"]

[server]
listen = "127.0.0.1:0"
threads = $ferry_threads

[log]
level = "info"
access_log = $2

[providers.up]
$provider

[pipelines.bench]
models = ["bench"]
providers = ["up"]
router = "priority"
EOF
}

# start_ferryd CONFIG -> FERRY_PID, FERRY_PORT (on core 0)
start_ferryd() {
  next_file ferryd.log
  local f=$FILE
  log_cmd "$on0 $ferryd --config $1 --admin-listen off   # $(tr '\n' ' ' <"$1")"
  $on0 "$ferryd" --config "$1" --admin-listen off 2>"$f" &
  FERRY_PID=$!
  pids+=("$FERRY_PID")
  for _ in $(seq 100); do grep -q 'ready: listening' "$f" && break; sleep 0.05; done
  FERRY_PORT=$(sed -n 's/.*ready: listening on [^ ]*:\([0-9]*\) .*/\1/p' "$f")
  [[ -n $FERRY_PORT ]] || die "ferryd did not start: $(cat "$f")"
}

stop() {  # PID
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

vm() {  # PID FIELD -> KiB
  awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

median() {
  (($#)) || { echo "-"; return; }
  printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}

field() {  # FILE KEY -> number from the last JSON line with that key
  grep -o "\"$2\":[-0-9.]*" "$1" 2>/dev/null | tail -1 | cut -d: -f2 || true
}

seqno=0
next_file() {  # PREFIX -> a fresh file name in $out (sets FILE; no subshell, so the counter sticks)
  seqno=$((seqno + 1))
  FILE="$out/$1.$seqno"
}

# Results: key -> list of values, in $out/results.txt as "key value" lines.
put() { echo "$1 $2" >>"$out/results.txt"; }
# shellcheck disable=SC2046  # one argument per value
med() { median $(awk -v k="$1" '$1 == k && $2 != "" {print $2}' "$out/results.txt"); }

# CPU accounting around a run: CPU time of ferryd and of the mock per request,
# and how busy each core was (from /proc; clock ticks, usually 10 ms).
clk_tck=$(getconf CLK_TCK)
ticks() {  # PID -> utime + stime (the comm of ferryd and the mock has no spaces)
  awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0
}
cores() {  # -> "busy0 total0 busy1 total1 ..." in ticks
  awk '/^cpu[0-9]/ {t = 0; for (i = 2; i <= NF; i++) t += $i; printf "%d %d ", t - $5 - $6, t}' /proc/stat
}
cpu_begin() {
  CPU_F0=$(ticks "${FERRY_PID:-0}")
  CPU_M0=$(ticks "${MOCK_PID:-0}")
  CPU_C0=$(cores)
}
cpu_end() {  # TAG REQUESTS
  local f1 m1 c1
  f1=$(ticks "${FERRY_PID:-0}")
  m1=$(ticks "${MOCK_PID:-0}")
  c1=$(cores)
  local n=${2:-0}
  ((n > 0)) || return 0
  put "$1.ferry_cpu_us" "$(awk -v a="$CPU_F0" -v b="$f1" -v n="$n" -v hz="$clk_tck" 'BEGIN {printf "%.1f", (b - a) * 1e6 / hz / n}')"
  put "$1.mock_cpu_us" "$(awk -v a="$CPU_M0" -v b="$m1" -v n="$n" -v hz="$clk_tck" 'BEGIN {printf "%.1f", (b - a) * 1e6 / hz / n}')"
  local core pct
  while read -r core pct; do put "$1.core$core" "$pct"; done < <(awk -v a="$CPU_C0" -v b="$c1" 'BEGIN {
    na = split(a, x, " "); split(b, y, " ")
    for (i = 1; i + 1 <= na; i += 2) {
      dt = y[i + 1] - x[i + 1]
      if (dt > 0) printf "%d %.0f\n", (i - 1) / 2, 100 * (y[i] - x[i]) / dt
    }}')
}

run_wrk() {  # TAG SCRIPT CONNS PORT PLACEMENT
  next_file "$1.wrk"
  local tag=$1 script=$2 conns=$3 port=$4 where=$5 f=$FILE
  local cmd="$where wrk -t1 -c$conns -d${duration}s --latency -s $here/$script http://127.0.0.1:$port/v1/chat/completions"
  log_cmd "$cmd"
  cpu_begin
  $cmd >"$f" 2>&1 || say "wrk failed: $(tail -3 "$f")"
  cpu_end "$tag" "$(field "$f" requests)"
  put "$tag.rps" "$(field "$f" rps)"
  put "$tag.p50" "$(field "$f" p50_us)"
  put "$tag.p99" "$(field "$f" p99_us)"
  local e n
  e=$(field "$f" errors)
  n=$(field "$f" non2xx)
  put "$tag.err" "$(( ${e:-0} + ${n:-0} ))"
}

run_sse() {  # TAG CONNS REQUESTS PORT PLACEMENT [ARGS...]
  next_file "$1.sse"
  local tag=$1 conns=$2 reqs=$3 port=$4 where=$5 f=$FILE
  shift 5
  local cmd="$where $bench --target 127.0.0.1:$port --model bench --concurrency $conns --requests $reqs $*"
  log_cmd "$cmd"
  cpu_begin
  $cmd >"$f" 2>"$f.err" || say "ferry-bench-sse ($tag) reported errors: $(cat "$f.err")"
  cpu_end "$tag" "$(field "$f" requests)"
  for k in ttfb_p50_us ttfb_p99_us total_p50_us total_p99_us errors max_concurrent_open wall_s requests; do
    put "$tag.$k" "$(field "$f" $k)"
  done
}

warm_up() {  # PORT
  wrk -t1 -c8 -d2s -s "$here/chat.lua" "http://127.0.0.1:$1/v1/chat/completions" >/dev/null 2>&1 || true
}

: >"$out/results.txt"
: >"$out/commands.log"
say "raw outputs in $out"

# ---- A-D: throughput and latency against a plain mock (20-word replies)
if want A || want B || want C || want D; then
  start_mock --words 20
  if want A || want B || want C; then
    write_config "$out/ferry-bench.toml" false openai
    start_ferryd "$out/ferry-bench.toml"
    warm_up "$MOCK_PORT"
    warm_up "$FERRY_PORT"
    for i in $(seq "$runs"); do
      for c in 1 32; do
        if want A; then
          say "A run $i: non-streaming, $c connection(s)"
          run_wrk "A.direct.c$c" chat.lua "$c" "$MOCK_PORT" "$on0"
          run_wrk "A.ferry.c$c" chat.lua "$c" "$FERRY_PORT" "$on1"
        fi
        if want B; then
          say "B run $i: streaming (wrk), $c connection(s)"
          run_wrk "B.direct.c$c" stream.lua "$c" "$MOCK_PORT" "$on0"
          run_wrk "B.ferry.c$c" stream.lua "$c" "$FERRY_PORT" "$on1"
        fi
        if want C; then
          say "C run $i: streaming TTFB (ferry-bench-sse), $c connection(s)"
          n=$(( c == 1 ? 3000 : 30000 ))
          run_sse "C.direct.c$c" "$c" "$n" "$MOCK_PORT" "$on0"
          run_sse "C.ferry.c$c" "$c" "$n" "$FERRY_PORT" "$on1"
        fi
      done
    done
    stop "$FERRY_PID"
  fi
  if want D; then
    write_config "$out/ferry-bench-accesslog.toml" true openai
    start_ferryd "$out/ferry-bench-accesslog.toml"
    warm_up "$FERRY_PORT"
    for i in $(seq "$runs"); do
      for c in 1 32; do
        say "D run $i: non-streaming with access_log = true, $c connection(s)"
        run_wrk "D.ferry.c$c" chat.lua "$c" "$FERRY_PORT" "$on1"
      done
    done
    stop "$FERRY_PID"
  fi
  stop "$MOCK_PID"
fi

# ---- E-F: many concurrent streams
kstat() {  # -> "ListenOverflows N" and "RetransSegs N" (system-wide TCP counters)
  awk '$1 == "TcpExt:" || $1 == "Tcp:" {
    if (!(($1) in seen)) { seen[$1] = 1; for (i = 2; i <= NF; i++) name[$1, i] = $i; next }
    for (i = 2; i <= NF; i++) if (name[$1, i] == "ListenOverflows" || name[$1, i] == "RetransSegs") print name[$1, i], $i
  }' /proc/net/netstat /proc/net/snmp
}
hold_run() {  # TAG CONFIG [bench args]
  local tag=$1 cfg=$2
  shift 2
  start_ferryd "$cfg"
  # one small request so that the baseline includes what the first request allocates
  $bench --target "127.0.0.1:$FERRY_PORT" --model bench --requests 2 --body-words 1 >/dev/null 2>&1 || true
  sleep 0.5
  local base
  base=$(vm "$FERRY_PID" VmRSS)
  local k0 k1
  k0=$(kstat)
  run_sse "$tag" "$streams" "$streams" "$FERRY_PORT" "$on1" --hold --timeout-s 120 "$@"
  k1=$(kstat)
  # listen-queue overflows (SYNs or handshake ACKs dropped: the client retries
  # after 1 s, 3 s, ...) and TCP retransmissions during the run
  put "$tag.listen_overflows" "$(awk -v a="$k0" -v b="$k1" 'BEGIN {split(a, x, /[ \n]/); split(b, y, /[ \n]/); for (i = 1; i in x; i += 2) if (x[i] == "ListenOverflows") print y[i + 1] - x[i + 1]}')"
  put "$tag.retrans" "$(awk -v a="$k0" -v b="$k1" 'BEGIN {split(a, x, /[ \n]/); split(b, y, /[ \n]/); for (i = 1; i in x; i += 2) if (x[i] == "RetransSegs") print y[i + 1] - x[i + 1]}')"
  local hwm
  hwm=$(vm "$FERRY_PID" VmHWM)
  put "$tag.rss_base_kib" "$base"
  put "$tag.hwm_kib" "$hwm"
  local open
  open=$(awk -v k="$tag.max_concurrent_open" '$1 == k {v = $2} END {print v}' "$out/results.txt")
  put "$tag.kib_per_stream" "$(awk -v h="$hwm" -v b="$base" -v n="$open" 'BEGIN {printf "%.1f", n ? (h - b) / n : 0}')"
  stop "$FERRY_PID"
}
if want E; then
  start_mock --words 50 --chunk-delay-ms 100
  write_config "$out/ferry-bench-streams.toml" false openai
  for i in $(seq "$runs"); do
    say "E run $i: $streams concurrent streams through ferryd (openai -> mock upstream)"
    hold_run E "$out/ferry-bench-streams.toml"
  done
  stop "$MOCK_PID"
fi
if want F; then
  write_config "$out/ferry-bench-mockprovider.toml" false mock
  for i in $(seq "$runs"); do
    say "F run $i: $streams concurrent streams through ferryd (in-process mock provider)"
    hold_run F "$out/ferry-bench-mockprovider.toml" --body-words 47
  done
fi

# ---- report
us() { awk -v v="$1" 'BEGIN {if (v == "-" || v == "") print "-"; else if (v >= 10000) printf "%.1f ms", v / 1000; else printf "%d µs", v}'; }
num() { awk -v v="$1" 'BEGIN {if (v == "-" || v == "") print "-"; else printf "%.0f", v}'; }
cpu_cols() {  # TAG WHO(direct|ferry) -> "ferryd CPU/req | mock CPU/req | core 0 / core 1 busy"
  local f="-"
  [[ $2 = ferry ]] && f="$(med "$1.ferry_cpu_us") µs"
  echo "$f | $(med "$1.mock_cpu_us") µs | $(med "$1.core0")% / $(med "$1.core1")%"
}
label() { [[ $1 = direct ]] && echo "straight to mock" || echo "through ferryd"; }

echo "Machine: $ncpu cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
if [[ $pin = one ]]; then
  echo "Placement: everything (load generator, mock, ferryd with threads = 1) on core 0."
elif [[ -n $on0 ]]; then
  echo "Placement: pinned: ferryd (threads = 1) on core 0; through ferryd, the load generator and the mock share core 1; straight to the mock, the mock has core 1 and the load generator core 0."
else
  echo "Placement: not pinned; ferryd threads = 0 (one per core)."
fi
echo "Medians of $runs runs (each column separately); wrk runs last ${duration} s. CPU/req = process CPU time (utime+stime) / requests. Raw outputs: $out"
echo
if want A; then
  echo "### Non-streaming (wrk -t1 --latency, 20-word replies, access_log = false)"
  echo
  echo "| case | conns | req/s | p50 | p99 | errors | ferryd CPU/req | mock CPU/req | core 0 / core 1 busy |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for c in 1 32; do
    for w in direct ferry; do
      echo "| $(label $w) | $c | $(num "$(med A.$w.c$c.rps)") | $(us "$(med A.$w.c$c.p50)") | $(us "$(med A.$w.c$c.p99)") | $(med A.$w.c$c.err) | $(cpu_cols A.$w.c$c $w) |"
    done
  done
  echo
  added=$(awk -v a="$(med A.ferry.c1.p50)" -v b="$(med A.direct.c1.p50)" 'BEGIN {print a - b}')
  ratio=$(awk -v a="$(med A.ferry.c32.rps)" -v b="$(med A.direct.c32.rps)" 'BEGIN {printf "%.2f", b ? a / b : 0}')
  echo "- added p50 latency at 1 connection (through − direct): **${added} µs** (target < 100 µs)"
  echo "- through/direct throughput at 32 connections: **${ratio}** (target ≥ 0.5)"
  echo
fi
if want B || want C; then
  echo "### Streaming (20-word replies: 22 JSON events + data: [DONE]; through ferryd the upstream also sends a usage chunk, which ferryd reads and withholds)"
  echo
  echo "req/s and p50 from wrk (a request ends with the terminating chunk); TTFB (first data: event) and total from ferry-bench-sse."
  echo
  echo "| case | conns | wrk req/s | wrk p50 | TTFB p50 | TTFB p99 | total p50 | total p99 | errors (wrk / bench) | ferryd CPU/req | mock CPU/req | core 0 / core 1 busy |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for c in 1 32; do
    for w in direct ferry; do
      echo "| $(label $w) | $c | $(num "$(med B.$w.c$c.rps)") | $(us "$(med B.$w.c$c.p50)") | $(us "$(med C.$w.c$c.ttfb_p50_us)") | $(us "$(med C.$w.c$c.ttfb_p99_us)") | $(us "$(med C.$w.c$c.total_p50_us)") | $(us "$(med C.$w.c$c.total_p99_us)") | $(med B.$w.c$c.err) / $(med C.$w.c$c.errors) | $(cpu_cols B.$w.c$c $w) |"
    done
  done
  echo
fi
if want D; then
  echo "### Access log cost (non-streaming through ferryd, wrk -t1; the log goes to a file)"
  echo
  echo "| access_log | conns | req/s | p50 | p99 | ferryd CPU/req |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: |"
  for c in 1 32; do
    if want A; then
      echo "| false | $c | $(num "$(med A.ferry.c$c.rps)") | $(us "$(med A.ferry.c$c.p50)") | $(us "$(med A.ferry.c$c.p99)") | $(med A.ferry.c$c.ferry_cpu_us) µs |"
    fi
    echo "| true | $c | $(num "$(med D.ferry.c$c.rps)") | $(us "$(med D.ferry.c$c.p50)") | $(us "$(med D.ferry.c$c.p99)") | $(med D.ferry.c$c.ferry_cpu_us) µs |"
  done
  echo
fi
if want E || want F; then
  echo "### $streams concurrent SSE streams (ferry-bench-sse --hold: one request per connection, all sent at once)"
  echo
  echo "| provider | streams | errors | max concurrent open | TTFB p50 | TTFB p99 | total p50 | total p99 | ferryd RSS before | ferryd peak RSS (VmHWM) | (peak − before) / stream | ferryd CPU / stream | core 0 / core 1 busy | listen overflows / retransmits |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for t in E F; do
    want $t || continue
    if [[ $t = E ]]; then name="openai → mock upstream (50 words, 100 ms apart)"; else name="in-process mock (50 tokens at 10/s)"; fi
    echo "| $name | $streams | $(med $t.errors) | $(med $t.max_concurrent_open) | $(us "$(med $t.ttfb_p50_us)") | $(us "$(med $t.ttfb_p99_us)") | $(us "$(med $t.total_p50_us)") | $(us "$(med $t.total_p99_us)") | $(awk -v v="$(med $t.rss_base_kib)" 'BEGIN {printf "%.1f MiB", v / 1024}') | $(awk -v v="$(med $t.hwm_kib)" 'BEGIN {printf "%.1f MiB", v / 1024}') | $(med $t.kib_per_stream) KiB | $(awk -v v="$(med $t.ferry_cpu_us)" 'BEGIN {printf "%.1f ms", v / 1000}') | $(med $t.core0)% / $(med $t.core1)% | $(med $t.listen_overflows) / $(med $t.retrans) |"
  done
  echo
  for t in E F; do
    want $t || continue
    echo "- $t per run: $(awk -v t="$t" '$1 == t ".errors" {e = e " " $2} $1 == t ".max_concurrent_open" {m = m " " $2} $1 == t ".hwm_kib" {h = h " " $2} $1 == t ".ttfb_p99_us" {p = p " " $2} $1 == t ".listen_overflows" {o = o " " $2} END {printf "errors%s; max open%s; VmHWM KiB%s; TTFB p99 µs%s; listen overflows%s", e, m, h, p, o}' "$out/results.txt")"
  done
  echo
fi
