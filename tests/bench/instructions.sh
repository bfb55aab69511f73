#!/usr/bin/env bash
# Instructions ferryd executes per request, counted by callgrind: repeatable
# whatever else the machine does, so it is the before/after figure for changes
# on the hot path (BENCHMARKS.md, "Instructions per request").
#
#   tests/bench/instructions.sh            # non-streaming and streaming, 2000 requests each
#   KINDS=chat ROUTER='"least-latency"' tests/bench/instructions.sh
#                                          # the cost of a routing strategy: three providers
#                                          # (up, up2, up3) in front of the same mock
#   MIDDLEWARE=limits-budget tests/bench/instructions.sh
#                                          # with rate-limit and budget (memory state), limits
#                                          # high enough never to refuse
#   DOOR=anthropic tests/bench/instructions.sh
#                                          # the same requests through POST /v1/messages
#
# ferryd runs with [server] threads = 1 and access_log = false in front of
# ferry-mock-upstream --words 20 (22 SSE events per stream). Two runs per kind,
# with N and with 0 requests, and the difference divided by N removes the cost
# of start-up and shutdown. Environment: FERRY_BUILD_DIR (default build), REQUESTS,
# FERRY_MOCK_UPSTREAM (default: the build's), DOOR (openai, anthropic), MIDDLEWARE,
# KINDS ("chat stream"), ROUTER (a TOML value for the pipeline's router).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${FERRY_BUILD_DIR:-build}
[[ $build = /* ]] || build="$root/$build"
n=${REQUESTS:-2000}
out=$(mktemp -d /tmp/ferry-instr.XXXXXX)
ferryd=$build/host/ferryd
mock=${FERRY_MOCK_UPSTREAM:-$build/tests/mock_upstream/ferry-mock-upstream}
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

"$mock" --listen 127.0.0.1:0 --threads 1 --words 20 >"$out/mock.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q '^listening' "$out/mock.out" && break; sleep 0.05; done
mport=$(sed -n 's/^listening .*:\([0-9]*\)$/\1/p' "$out/mock.out")
cat >"$out/ferry.toml" <<TOML
plugin_dirs = ["$build/plugins"]
[server]
listen = "127.0.0.1:0"
threads = 1
[log]
access_log = false
[providers.up]
plugin = "openai"
base_url = "http://127.0.0.1:$mport/v1"
attributes = { tier = "standard", price = { input = 1, output = 2 }, capabilities = ["tools"], context_window = 100000 }
TOML
if [[ -n ${ROUTER:-} ]]; then
  for extra in up2 up3; do
    cat >>"$out/ferry.toml" <<TOML
[providers.$extra]
plugin = "openai"
base_url = "http://127.0.0.1:$mport/v1"
attributes = { tier = "standard", price = { input = 1, output = 2 }, capabilities = ["tools"], context_window = 100000 }
TOML
  done
  printf '[pipelines.bench]\nmodels = ["bench"]\nproviders = ["up", "up2", "up3"]\nrouter = %s\n' "$ROUTER" >>"$out/ferry.toml"
else
  printf '[pipelines.bench]\nmodels = ["bench"]\nproviders = ["up"]\n' >>"$out/ferry.toml"
fi
if [[ ${MIDDLEWARE:-} == limits-budget ]]; then
  cat >>"$out/ferry.toml" <<TOML
middleware = ["limits", "budget"]
[middleware.limits]
plugin = "rate-limit"
limits = [{ per = "key", requests_per_minute = 100000000, tokens_per_minute = 1000000000 }]
[middleware.budget]
plugin = "budget"
prices = { bench = { input = 1, output = 1 } }
budgets = [{ per = "global", usd = 1000000000 }]
TOML
elif [[ -n ${MIDDLEWARE:-} ]]; then
  echo "MIDDLEWARE=$MIDDLEWARE: only limits-budget is known" >&2
  exit 2
fi

# ir KIND COUNT: total instructions of a ferryd that served COUNT requests.
ir() {
  local log=$out/ferryd.$1.$2.log
  valgrind --tool=callgrind --callgrind-out-file="$out/cg.$1.$2" "$ferryd" --config "$out/ferry.toml" --admin-listen off 2>"$log" &
  local pid=$!
  for _ in $(seq 600); do grep -q 'ready: listening' "$log" && break; sleep 0.1; done
  local port
  port=$(sed -n 's/.*ready: listening on [^ ]*:\([0-9]*\) .*/\1/p' "$log")
  python3 - "$port" "$1" "$2" "${DOOR:-openai}" <<'PY'
import http.client, json, sys
port, kind, count, door = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
anthropic = door == "anthropic"
body = {"model": "bench", "messages": [{"role": "user", "content": "benchmark me"}]}
if anthropic:
    body["max_tokens"] = 256
if kind == "stream":
    body["stream"] = True
data = json.dumps(body)
path = "/v1/messages" if anthropic else "/v1/chat/completions"
headers = {"content-type": "application/json", "authorization": "Bearer bench-key"}
if anthropic:
    headers["anthropic-version"] = "2023-06-01"
end = b"data: {\"type\":\"message_stop\"}\n\n" if anthropic else b"data: [DONE]\n\n"
c = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(count):
    c.request("POST", path, data, headers)
    r = c.getresponse()
    text = r.read()
    assert r.status == 200, text
    assert kind != "stream" or text.endswith(end), text[-200:]
PY
  kill -TERM "$pid"
  wait "$pid" || true
  grep -m1 '^summary:\|^totals:' "$out/cg.$1.$2" | awk '{print $2}'
}

for kind in ${KINDS:-chat stream}; do
  base=$(ir "$kind" 0)
  loaded=$(ir "$kind" "$n")
  echo "$kind: $(( (loaded - base) / n )) instructions per request (callgrind, $n requests)"
done
echo "callgrind files in $out (callgrind_annotate $out/cg.chat.$n)" >&2
