-- wrk script for POST /api/errors: a realistic mix, mostly repeats of a few hundred groups.
--
--   50 sources x 6 error types = 300 recurring groups; every message carries fresh ids, numbers,
--   uuids, hex, paths or quoted values (normalised away by the grouping), 20 nodes, 30 % with
--   a stack trace, some with context; plus 1 % one-off errors (a new error type each).
-- 4,096 request bodies are built once per wrk thread and sent round-robin.
--
-- Usage: wrk -t2 -c32 -d30s --latency -s bench/errors.lua http://127.0.0.1:8080/api/errors

local templates = {
  {"TimeoutError",   "query %d timed out after %d ms"},
  {"KeyError",       "'%s' not in cache shard %d"},
  {"NotFound",       "user %d not found (request %s)"},
  {"IOError",        "cannot open /var/lib/app/%d/data-%d.db"},
  {"ConnectionError","connect 10.0.%d.%d:5432 refused"},
  {"ValueError",     "bad checksum 0x%x in block %d"},
}

local function uuid()
  return string.format("%08x-%04x-4%03x-a%03x-%012x", math.random(0, 0x7fffffff),
    math.random(0, 0xffff), math.random(0, 0xfff), math.random(0, 0xfff), math.random(0, 0x7fffffff))
end

local function message(t)
  local fmt = templates[t][2]
  if t == 2 then return string.format(fmt, "k" .. math.random(1, 1e6), math.random(1, 64)) end
  if t == 3 then return string.format(fmt, math.random(1, 1e7), uuid()) end
  if t == 6 then return string.format(fmt, math.random(1, 0x7fffffff), math.random(1, 1e6)) end
  return string.format(fmt, math.random(1, 250), math.random(1, 60000))
end

local stack = "Traceback (most recent call last):\\n  File \\\"app/handlers.py\\\", line 120, in handle\\n    result = service.run(request)\\n  File \\\"app/service.py\\\", line 88, in run\\n    return self.db.query(sql)\\n  File \\\"app/db.py\\\", line 41, in query\\n    raise TimeoutError(msg)"

local requests = {}
local n = 4096

function init(args)
  math.randomseed(os.time() + (tonumber(tostring({}):sub(8)) or 0))
  local headers = {["Content-Type"] = "application/json"}
  for i = 1, n do
    local t = math.random(1, #templates)
    local etype = templates[t][1]
    local source = "service-" .. math.random(1, 50)
    if math.random() < 0.01 then
      etype = "RareError" .. math.random(1, 1e9)
    end
    local body = string.format(
      '{"node_id":"node-%d","error_type":"%s","source":"%s","message":"%s","level":"%s"',
      math.random(1, 20), etype, source, message(t), (math.random() < 0.9) and "error" or "warning")
    if math.random() < 0.3 then
      body = body .. ',"stack_trace":"' .. stack .. '"'
    end
    if math.random() < 0.2 then
      body = body .. ',"context":{"release":"1.4.' .. math.random(1, 9) .. '","request_id":"' .. uuid() .. '"}'
    end
    body = body .. "}"
    requests[i] = wrk.format("POST", nil, headers, body)
  end
end

local i = 0
function request()
  i = i % n + 1
  return requests[i]
end
