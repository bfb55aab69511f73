-- wrk script: non-streaming OpenAI chat completions.
--
--   wrk -t1 -c32 -d10s --latency -s tests/bench/chat.lua http://127.0.0.1:PORT/v1/chat/completions
--
-- BENCH_MODEL (default "bench") sets the request's model. At the end it prints
-- one machine-readable line that run.sh parses:
--   WRK_JSON {"requests":N,"duration_us":N,"rps":X,"p50_us":N,"p99_us":N,"errors":N,"non2xx":N}
-- errors = connect + read + write + timeout errors; non2xx = responses with
-- a status outside 2xx/3xx.
local model = os.getenv("BENCH_MODEL") or "bench"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
-- BENCH_AUTH, if set, is sent as "Authorization: Bearer <value>" (middleware benchmarks).
if os.getenv("BENCH_AUTH") then wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_AUTH") end
wrk.body = '{"model":"' .. model .. '","messages":[{"role":"user","content":"hello there"}]}'

-- BENCH_VARY=1 makes every request's text different (cache misses).
if os.getenv("BENCH_VARY") == "1" then
  local n = 0
  request = function()
    n = n + 1
    return wrk.format(nil, nil, nil,
      '{"model":"' .. model .. '","messages":[{"role":"user","content":"hello there ' .. n .. '"}]}')
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"rps":%.1f,"p50_us":%d,"p99_us":%d,"errors":%d,"non2xx":%d}\n',
    summary.requests, summary.duration, summary.requests / summary.duration * 1e6,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
