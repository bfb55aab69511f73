#!/usr/bin/env bash
# What the stateful middleware costs per request: ferryd in front of
# ferry-mock-upstream, with no middleware, with logging alone, with logging +
# rate-limit + budget, and with the whole suite (auth + cache + rate-limit +
# budget + logging), on the memory backend and on a local redis-server. The
# suite runs twice: every request different (cache misses, the whole path),
# and every request the same (cache hits, answered by ferryd alone). wrk, 1 connection
# (latency) and 32 connections (throughput). Limits are set so high that
# nothing is refused: every request takes the whole path (a window check for
# requests and one for tokens, a budget reservation, and the corrections in
# on_complete).
#
#   tests/bench/middleware.sh                       # 10 s per run
#   BENCH_DURATION=5 FERRY_BUILD_DIR=build tests/bench/middleware.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${FERRY_BUILD_DIR:-build}
[[ $build = /* ]] || build="$root/$build"
duration=${BENCH_DURATION:-10}
out=$(mktemp -d /tmp/ferry-mwbench.XXXXXX)
for tool in wrk redis-server; do
  command -v $tool >/dev/null || { echo "$tool is missing: apt-get install $tool" >&2; exit 1; }
done

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_line() { for _ in $(seq 200); do grep -q "$2" "$1" && return 0; sleep 0.05; done; echo "timeout: $1" >&2; exit 1; }

"$build/tests/mock_upstream/ferry-mock-upstream" --listen 127.0.0.1:0 --threads 1 --words 20 >"$out/mock.out" 2>&1 &
pids+=($!)
wait_line "$out/mock.out" '^listening'
mport=$(sed -n 's/^listening .*:\([0-9]*\)$/\1/p' "$out/mock.out")
rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >"$out/redis.out" 2>&1 &
pids+=($!)
wait_line "$out/redis.out" 'Ready to accept connections'

config() {  # VARIANT -> ferry.toml
  cat <<TOML
plugin_dirs = ["$build/plugins"]
[server]
listen = "127.0.0.1:0"
threads = 1
[log]
access_log = false
[providers.up]
plugin = "openai"
base_url = "http://127.0.0.1:$mport/v1"
[middleware.logging]
plugin = "logging"
[middleware.limits]
plugin = "rate-limit"
limits = [{ per = "key", requests_per_minute = 1e12, tokens_per_minute = 1e15 }]
[middleware.budget]
plugin = "budget"
prices = { "*" = { input = 1, output = 2 } }
budgets = [{ per = "key", usd = 1e12 }]
[middleware.auth]
plugin = "auth"
keys = [{ sha256 = "$(printf bench-key | sha256sum | cut -c1-64)", owner = "bench", team = "bench" }]
[middleware.cache]
plugin = "cache"
TOML
  case $1 in
    none) printf '[pipelines.bench]\nmodels = ["bench"]\nproviders = ["up"]\n' ;;
    logging) printf '[pipelines.bench]\nmodels = ["bench"]\nproviders = ["up"]\nmiddleware = ["logging"]\n' ;;
    memory | redis)
      printf '[pipelines.bench]\nmodels = ["bench"]\nproviders = ["up"]\nmiddleware = ["logging", "limits", "budget"]\n'
      ;;
    suite-*)
      printf '[pipelines.bench]\nmodels = ["bench"]\nproviders = ["up"]\nmiddleware = ["auth", "cache", "limits", "budget", "logging"]\n'
      ;;
  esac
  case $1 in
    redis | suite-redis-*) printf '[state]\nbackend = "redis"\nurl = "redis://127.0.0.1:%s/0"\n' "$rport" ;;
  esac
}

printf '%-18s %12s %12s %14s\n' variant "p50 c1 µs" "p99 c1 µs" "req/s c32"
for variant in none logging memory redis suite-memory-miss suite-redis-miss suite-memory-hit suite-redis-hit; do
  vary=0
  [[ $variant == *-miss ]] && vary=1
  config $variant >"$out/$variant.toml"
  "$build/host/ferryd" --config "$out/$variant.toml" --admin-listen off >"$out/$variant.log" 2>&1 &
  fpid=$!
  pids+=($fpid)
  wait_line "$out/$variant.log" 'listening on'
  fport=$(sed -n 's/.*listening on [^ ]*:\([0-9]*\) .*/\1/p' "$out/$variant.log" | head -1)
  url="http://127.0.0.1:$fport/v1/chat/completions"
  export BENCH_AUTH=bench-key BENCH_VARY=$vary
  wrk -t1 -c8 -d2s -s "$here/chat.lua" "$url" >/dev/null 2>&1 || true  # warm-up
  c1=$(wrk -t1 -c1 -d"${duration}s" --latency -s "$here/chat.lua" "$url" | sed -n 's/^WRK_JSON //p')
  c32=$(wrk -t1 -c32 -d"${duration}s" --latency -s "$here/chat.lua" "$url" | sed -n 's/^WRK_JSON //p')
  python3 - "$variant" "$c1" "$c32" <<'PY'
import json, sys
v, a, b = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
bad = a["errors"] + a["non2xx"] + b["errors"] + b["non2xx"]
print(f'{v:<18} {a["p50_us"]:>12} {a["p99_us"]:>12} {b["rps"]:>14.0f}' + (f'  ({bad} errors!)' if bad else ''))
PY
  kill "$fpid"
  wait "$fpid" 2>/dev/null || true
done
