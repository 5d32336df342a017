-- wrk's side of the load (bench/wrk.ts): one POST of BENCH_BODY per request.
-- With several keys wrk runs one thread per connection, so giving each thread
-- a key of its own (from the comma-separated BENCH_KEYS, round robin) gives
-- each connection the account behind that key. BENCH_HEADERS, one
-- "name: value" a line, are added to every request (Portkey's routing).
local keys = {}
for key in string.gmatch(os.getenv("BENCH_KEYS") or "", "[^,]+") do
  keys[#keys + 1] = key
end
local extraHeaders = {}
for line in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^\n]+") do
  local name, value = string.match(line, "^([^:]+):%s*(.*)$")
  if name then extraHeaders[name] = value end
end
local threads = 0

function setup(thread)
  thread:set("key", keys[threads % #keys + 1])
  threads = threads + 1
end

function init()
  wrk.method = "POST"
  wrk.body = os.getenv("BENCH_BODY")
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. key
  for name, value in pairs(extraHeaders) do
    wrk.headers[name] = value
  end
end

function done(summary, latency)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"durationUs":%d,"p50Us":%d,"p99Us":%d,"errors":%d,"non2xx":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
