-- vmtrace.otlp: the OTLP/HTTP exporter against a real receiver.
--
-- tests/otlp/receiver.js (Node.js) listens on 127.0.0.1 and records every
-- request as one JSON line (and, with --bodies, each body byte for byte); each
-- test starts its own receivers (listeners of one receiver.js --serve that
-- this process starts with io.popen, so it is its parent and reaps it),
-- waits for "listening ID PORT" with a bounded poll, and stops them in
-- after_each (the port closes and its connections are cut). Settings that
-- come from the environment are tested in child lua5.4 processes started
-- with exactly those variables (every other OTEL_* variable and TRACEPARENT
-- unset); the multi-process test starts three.
--
-- No test asserts a duration. That a receiver which is down or hangs never
-- blocks the script is shown by the calls returning, with the spans counted as
-- dropped or queued, and by the test finishing at all.

local vmtrace = require "vmtrace"
local helper = require "spec.helper"

------------------------------------------------------------------------------
-- helpers
------------------------------------------------------------------------------

-- The checkout's root (absolute).
local ROOT = helper.ROOT
local RECEIVER = ROOT .. "/tests/otlp/receiver.js"

local q = helper.shq

local read = helper.try_read

local write = helper.write

-- Runs a shell command: its exit status and stdout.
local run = helper.run

local function nap() os.execute("sleep 0.05") end

local function decode(text, what)
  local v, err = vmtrace.json_decode(text)
  assert(v ~= nil, ("%s is not JSON (%s): %s"):format(what, tostring(err), text:sub(1, 300)))
  return v
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

local TMP -- one directory for the whole file
local tmp_n = 0
local function tmp(name)
  tmp_n = tmp_n + 1
  return ("%s/%d-%s"):format(TMP, tmp_n, name)
end

-- 32 hex digits of a "trace_<uuid>" trace id.
local function trace_hex(trace_id) return (trace_id:gsub("^trace_", ""):gsub("-", "")) end

-- A finished process is gone or a zombie (waiting for its parent to reap it).
local function exited(pid)
  local stat = read("/proc/" .. pid .. "/stat")
  return stat == nil or stat:match("^%d+ %b() (%a)") == "Z"
end

------------------------------------------------------------------------------
-- the receiver
------------------------------------------------------------------------------

local receivers = {} -- started by the running test, stopped in after_each

-- Every receiver of this process is a listener of one node process,
-- tests/otlp/receiver.js --serve (a node start costs about 0.1 s of CPU: one
-- per test was most of this file's CPU). Commands go to its stdin; what it
-- says ("listening ID PORT", "stopped ID") goes to a file read back here. It
-- exits at the end of its input: when lazy_teardown closes it, or when this
-- process ends.
local server

local function server_line(pattern)
  return ("\n" .. (read(server.out) or "")):match("\n" .. pattern)
end

local function receiver_server()
  if server and not exited(server.pid) then return server end
  if server then
    local out = read(server.out) or "(no output)"
    server = nil
    error("tests/otlp/receiver.js --serve has ended: " .. out)
  end
  local code, dir = run("mktemp -d /tmp/vmtrace-otlp-receivers.XXXXXX")
  assert(code == 0, "mktemp -d failed")
  local s = { dir = dir:gsub("%s+$", "") }
  s.out, s.pidfile = s.dir .. "/out", s.dir .. "/pid"
  -- the shell writes its pid and becomes node (env execs it)
  s.handle = assert(io.popen(("echo $$ > %s; exec env -u LD_PRELOAD node %s --serve > %s 2>&1")
    :format(q(s.pidfile), q(RECEIVER), q(s.out)), "w"))
  for _ = 1, 600 do
    s.pid = math.tointeger(tonumber((read(s.pidfile) or ""):match("%d+")))
    if s.pid then break end
    nap()
  end
  assert(s.pid, "tests/otlp/receiver.js --serve did not start")
  server = s
  return s
end

local function server_end()
  if not server then return end
  server.handle:close() -- end of input: it exits, and close waits for it
  os.execute("rm -rf " .. q(server.dir))
  server = nil
end

-- Waits for the server to say pattern (a line's start); its capture.
local function server_says(pattern, what)
  for i = 1, 600 do -- at most ~30 s
    local got = server_line(pattern)
    if got then return got end
    if exited(server.pid) then break end
    if i > 1 then nap() end
  end
  error(what .. ": " .. (read(server.out) or "(no output)"))
end

local receiver_n = 0

--- Starts a receiver (tests/otlp/receiver.js's options as extra arguments);
-- returns {id, port, url, record, bodies}.
local function start_receiver(...)
  local s = receiver_server()
  receiver_n = receiver_n + 1
  local r = { id = tostring(receiver_n), record = tmp("requests.jsonl"), bodies = tmp("bodies") }
  assert(os.execute("mkdir " .. q(r.bodies)))
  local cmd = { "start", r.id, "--record", r.record, "--bodies", r.bodies, ... }
  for _, a in ipairs(cmd) do assert(not a:find("[\t\n]"), "a receiver argument with a tab or newline") end
  s.handle:write(table.concat(cmd, "\t"), "\n")
  s.handle:flush()
  receivers[#receivers + 1] = r
  r.port = tonumber(server_says("listening " .. r.id .. " (%d+)", "the receiver did not start"))
  r.url = ("http://127.0.0.1:%d/v1/traces"):format(r.port)
  return r
end

--- Stops a receiver: its port closes and its connections are cut, as when
-- a receiver's process ends.
local function stop_receiver(r)
  if r.stopped then return end
  r.stopped = true
  server.handle:write("stop\t", r.id, "\n")
  server.handle:flush()
  server_says("(stopped " .. r.id .. ")\n", "the receiver did not stop")
end

--- A closed port on 127.0.0.1: one a receiver had until it was stopped.
local function closed_url()
  local r = start_receiver()
  stop_receiver(r)
  return r.url
end

--- Every request the receiver recorded, in order (decoded lines).
local function records(r)
  local out = {}
  local text = read(r.record)
  if not text then return out end
  for line in text:gmatch("([^\n]*)\n") do out[#out + 1] = decode(line, "a receiver record") end
  return out
end

--- The exact bytes of request n's body (gunzipped).
local function body_bytes(r, n) return read(("%s/%d.json"):format(r.bodies, n)) end

local function spans_of(body)
  local out = {}
  for _, rs in ipairs(body.resourceSpans or {}) do
    for _, ss in ipairs(rs.scopeSpans or {}) do
      for _, s in ipairs(ss.spans or {}) do out[#out + 1] = s end
    end
  end
  return out
end

--- The spans of every request answered 200: a list, and spanId -> how many times.
local function delivered(r)
  local list, seen = {}, {}
  for _, rec in ipairs(records(r)) do
    if rec.status == 200 then
      assert(rec.body, "a request without a JSON body: " .. tostring(rec.bodyError))
      for _, s in ipairs(spans_of(rec.body)) do
        list[#list + 1] = s
        seen[s.spanId] = (seen[s.spanId] or 0) + 1
      end
    end
  end
  return list, seen
end

--- What the receiver got, for failure messages: "n:status:name,name | ...".
local function summary(r)
  local out = {}
  for _, rec in ipairs(records(r)) do
    local names = {}
    for _, s in ipairs(rec.body and spans_of(rec.body) or {}) do names[#names + 1] = s.name end
    out[#out + 1] = ("%s:%s:%s"):format(tostring(rec.n), tostring(rec.status), table.concat(names, ","))
  end
  return "the receiver got " .. table.concat(out, " | ")
end

local function assert_no_duplicates(seen, r)
  local dups = {}
  for id, n in pairs(seen) do
    if n > 1 then dups[#dups + 1] = ("%s x%d"):format(id, n) end
  end
  table.sort(dups)
  assert.same({}, dups, "span ids delivered more than once" .. (r and "; " .. summary(r) or ""))
end

-- AnyValue list -> {key = AnyValue}
local function attr_map(list)
  local t = {}
  for _, kv in ipairs(list or {}) do
    assert.is_nil(t[kv.key], "duplicate attribute " .. kv.key)
    t[kv.key] = kv.value
  end
  return t
end

--- The local completed spans by their exported (OTLP) span id:
-- {name, parent = exported id of the parent or nil, trace}.
local function local_spans()
  local list = decode(vmtrace.export("json"), "the JSON export")
  local by_local, out = {}, {}
  for _, s in ipairs(list) do
    if s.otel_span_id then by_local[s.span_id] = s end
  end
  for _, s in pairs(by_local) do
    out[s.otel_span_id] = { name = s.name, trace = trace_hex(s.trace_id),
      parent = s.parent_id and by_local[s.parent_id] and by_local[s.parent_id].otel_span_id or nil }
  end
  return out
end

--- Asserts the receiver got exactly the local spans, each once, with their
-- names, parents and trace ids.
local function assert_delivered_exactly(r, want)
  local list, seen = delivered(r)
  assert_no_duplicates(seen, r)
  local missing, extra = {}, {}
  for id in pairs(want) do if not seen[id] then missing[#missing + 1] = id end end
  for id in pairs(seen) do if not want[id] then extra[#extra + 1] = id end end
  assert.same({}, missing, "spans never delivered")
  assert.same({}, extra, "spans delivered that were not recorded")
  for _, s in ipairs(list) do
    local w = want[s.spanId]
    assert.equal(w.name, s.name)
    assert.equal(w.trace, s.traceId)
    assert.equal(w.parent, s.parentSpanId, "parent of " .. s.name)
  end
  return list
end

local function verify(path)
  local code, _, _, out = helper.verify_otlp(path) -- tests/otlp/verify.js PATH 2>&1
  assert.equal(0, code, ("verify.js rejected %s (exit %s):\n%s"):format(path, tostring(code), out))
  assert.matches("^verify.js: OK ", out)
  return out
end

local function start_exporter(opts)
  local ok, err = vmtrace.otlp.start(opts)
  assert.is_true(ok, err)
end

--- n spans: a root "run" and n - 1 children, some with metadata.
local function make_spans(n, prefix)
  prefix = prefix or "call_"
  local root = vmtrace.start("pipeline", prefix .. "run")
  for i = 1, n - 1 do
    local id = vmtrace.start("fn_call", prefix .. i)
    if i % 3 == 0 then vmtrace.set_metadata(id, "i", i) end
    assert.is_number(vmtrace.finish(id))
  end
  assert.is_number(vmtrace.finish(root))
end

------------------------------------------------------------------------------
-- child processes
------------------------------------------------------------------------------

-- Variables a child must not inherit from whoever runs the specs.
local CLEAN_ENV = {
  "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
  "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
  "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
  "OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
  "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER",
  "OTEL_TRACES_SAMPLER_ARG", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_MAX_QUEUE_SIZE",
  "OTEL_BSP_SCHEDULE_DELAY", "OTEL_BSP_EXPORT_TIMEOUT", "TRACEPARENT",
}

-- What every child script starts with: the module, and report(t) printing
-- key=value lines the spec reads back with parse_report.
local PRELUDE = [[
local vmtrace = require "vmtrace"
local function report(t)
  local keys = {}
  for k in pairs(t or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do io.write(k, "=", tostring(t[k]), "\n") end
end
]]

--- The command running a Lua script in a child lua5.4 with exactly env added.
local function child_cmd(script, env, args, out, err)
  -- (timeout: a child that never ends fails its test instead of hanging the run)
  local parts = { "timeout -k 5 300 env" }
  for _, v in ipairs(CLEAN_ENV) do parts[#parts + 1] = "-u " .. v end
  parts[#parts + 1] = "LUA_PATH=" .. q(package.path)
  parts[#parts + 1] = "LUA_CPATH=" .. q(package.cpath)
  local keys = {}
  for k in pairs(env or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do parts[#parts + 1] = q(k .. "=" .. env[k]) end
  parts[#parts + 1] = "lua5.4 " .. q(script)
  for _, a in ipairs(args or {}) do parts[#parts + 1] = q(a) end
  return table.concat(parts, " ") .. " >" .. q(out) .. " 2>" .. q(err)
end

--- Runs source (after PRELUDE) in a child lua5.4: {code, out, err, report}.
local function lua_child(source, env, args)
  local script, out, err = tmp("child.lua"), tmp("child.out"), tmp("child.err")
  write(script, PRELUDE .. source)
  local _, _, code = os.execute(child_cmd(script, env, args, out, err))
  local res = { code = code, out = read(out) or "", err = read(err) or "" }
  res.report = {}
  for k, v in res.out:gmatch("([%w_%.]+)=([^\n]*)") do res.report[k] = v end
  return res
end

local function assert_child_ok(res)
  assert.equal(0, res.code, ("the child failed (exit %s):\nstdout: %s\nstderr: %s")
    :format(tostring(res.code), res.out, res.err))
end

-- A child that exports n spans to arg[1] with options from its environment
-- (and `extra`, a Lua table constructor), then reports its stats.
local function export_child(extra)
  return ([[
local n = tonumber(arg[2])
vmtrace.enable()
local opts = %s
opts.endpoint = opts.endpoint or (arg[1] ~= "" and arg[1] or nil)
local ok, err = vmtrace.otlp.start(opts)
assert(ok, err)
local root = vmtrace.start("pipeline", "child_run")
for i = 1, n - 1 do vmtrace.finish(vmtrace.start("fn_call", "child_" .. i)) end
vmtrace.finish(root)
local flushed = vmtrace.otlp.flush(30000)
local st = vmtrace.otlp.stats()
st.flushed = flushed
st.trace = vmtrace.trace_id()
report(st)
io.write("shutdown=", tostring(vmtrace.otlp.shutdown(10000)), "\n")
]]):format(extra or "{}")
end

------------------------------------------------------------------------------
-- specs
------------------------------------------------------------------------------

describe("vmtrace.otlp", function()
  lazy_setup(function()
    local code, out = run("mktemp -d /tmp/vmtrace-otlp-http-spec.XXXXXX")
    assert(code == 0, "mktemp -d failed")
    TMP = out:gsub("%s+$", "")
    assert(os.execute("command -v node >/dev/null 2>&1"),
      "node is not on PATH: the OTLP/HTTP tests need Node.js for tests/otlp/receiver.js " ..
      "(tools/deps.sh installs it; make check-tests installs the OpenTelemetry definitions)")
  end)

  lazy_teardown(function()
    server_end()
    if TMP and TMP:match("^/tmp/vmtrace%-otlp%-http%-spec%.") then os.execute("rm -rf " .. q(TMP)) end
  end)

  before_each(function()
    receivers = {}
    vmtrace.enable()
  end)

  after_each(function()
    vmtrace.otlp.shutdown(0) -- an exporter a failed test left running
    for _, r in ipairs(receivers) do stop_receiver(r) end
    receivers = {}
    -- back to the default sampler (parentbased_always_on) for the specs after
    vmtrace.otlp.start { endpoint = "http://127.0.0.1:9/v1/traces", sampler = "parentbased_always_on" }
    vmtrace.otlp.shutdown(0)
    vmtrace.enable()
    vmtrace.disable()
    if TMP then os.execute("rm -rf " .. q(TMP) .. "/*") end
  end)

  ----------------------------------------------------------------------------
  describe("delivery", function()
    it("delivers every span exactly once across many batches", function()
      local r = start_receiver()
      start_exporter { endpoint = r.url, batch_size = 64, delay_ms = 50 }
      local root = vmtrace.start("pipeline", "run")
      for i = 1, 999 do
        local id = vmtrace.start("fn_call", "call_" .. i) -- 999 distinct names
        if i % 7 == 0 then vmtrace.set_metadata(id, "i", i) end
        if i % 11 == 0 then vmtrace.record_event(id, "tick") end
        assert.is_number(vmtrace.finish(id))
      end
      vmtrace.finish(root)
      assert.is_true(vmtrace.otlp.flush(30000))
      local st = vmtrace.otlp.stats()
      assert.same({ queued = 0, queued_bytes = 0, exported = 1000, dropped = 0, failed_batches = 0,
                    failed_spans = 0, retries = 0, batches = st.batches }, st)

      local recs = records(r)
      assert.equal(st.batches, #recs)
      assert.is_true(#recs >= 16, ("1000 spans in batches of at most 64 need 16 requests, got %d"):format(#recs))
      for _, rec in ipairs(recs) do
        assert.equal("POST", rec.method)
        assert.equal("/v1/traces", rec.url)
        assert.equal(200, rec.status)
        assert.is_nil(rec.bodyError)
        local n = #spans_of(rec.body)
        assert.is_true(n >= 1 and n <= 64, ("a request with %d spans (batch_size 64)"):format(n))
      end
      local list = assert_delivered_exactly(r, local_spans())
      assert.equal(1000, #list)
      assert.is_true(vmtrace.otlp.shutdown(5000))
      assert.is_nil(vmtrace.otlp.stats(), "no exporter after shutdown")
    end)

    it("sends spans as they finish, without a flush, once a batch is full or the delay passed", function()
      local r = start_receiver()
      start_exporter { endpoint = r.url, batch_size = 10, delay_ms = 20 }
      make_spans(25)
      local got
      for _ = 1, 600 do -- no flush: the exporter thread sends on its own
        got = #(delivered(r))
        if got == 25 then break end
        nap()
      end
      assert.equal(25, got)
      assert.equal(25, vmtrace.otlp.stats().exported)
    end)

    it("delivers what is queued when the Lua state closes without shutdown", function()
      local r = start_receiver()
      local res = lua_child([[
vmtrace.enable()
assert(vmtrace.otlp.start { endpoint = arg[1], delay_ms = 60000 })
for i = 1, 300 do vmtrace.finish(vmtrace.start("fn_call", "late_" .. i)) end
report { done = true }
]], {}, { r.url })
      assert_child_ok(res)
      assert.equal("true", res.report.done)
      local list, seen = delivered(r)
      assert_no_duplicates(seen)
      assert.equal(300, #list)
    end)

    it("keeps each span's own trace id across a reset", function()
      local r = start_receiver()
      start_exporter { endpoint = r.url, delay_ms = 60000 }
      local t1 = trace_hex(vmtrace.trace_id())
      for i = 1, 5 do vmtrace.finish(vmtrace.start("fn_call", "first_" .. i)) end
      vmtrace.reset()
      local t2 = trace_hex(vmtrace.trace_id())
      assert.not_equal(t1, t2)
      for i = 1, 5 do vmtrace.finish(vmtrace.start("fn_call", "second_" .. i)) end
      assert.is_true(vmtrace.otlp.flush(30000))
      local list, seen = delivered(r)
      assert_no_duplicates(seen)
      assert.equal(10, #list)
      for _, s in ipairs(list) do
        assert.equal(s.name:match("^first_") and t1 or t2, s.traceId, s.name)
      end
    end)

    it("a second start finishes the first exporter: its spans go to its own endpoint", function()
      local a, b = start_receiver(), start_receiver()
      start_exporter { endpoint = a.url, delay_ms = 60000 }
      for i = 1, 10 do vmtrace.finish(vmtrace.start("fn_call", "to_a_" .. i)) end
      start_exporter { endpoint = b.url, delay_ms = 60000 }
      for i = 1, 5 do vmtrace.finish(vmtrace.start("fn_call", "to_b_" .. i)) end
      assert.is_true(vmtrace.otlp.flush(30000))
      -- the first exporter delivers in the background: wait for it (at most ~30 s)
      local la = delivered(a)
      for _ = 1, 600 do
        if #la >= 10 then break end
        nap()
        la = delivered(a)
      end
      local lb = delivered(b)
      assert.equal(10, #la)
      assert.equal(5, #lb)
      for _, s in ipairs(la) do assert.matches("^to_a_", s.name) end
      for _, s in ipairs(lb) do assert.matches("^to_b_", s.name) end
      assert.equal(5, vmtrace.otlp.stats().exported)
    end)

    it("a process ending while a replaced exporter still works does not crash", function()
      -- The replaced exporter's thread runs on after start; lua_close unloads
      -- C modules, and a module unloaded under a running thread crashed the
      -- process (SIGSEGV in about 1 run of 6). The module is never unloaded.
      local h = io.popen("readelf -d " .. q(ROOT .. "/build/vmtrace/otlp_http.so") .. " 2>/dev/null")
      local dyn = h:read("a")
      h:close()
      if dyn ~= "" then assert.matches("NODELETE", dyn) end
      local r = start_receiver("--hang")
      for _ = 1, 12 do
        local res = lua_child(([[
vmtrace.enable()
assert(vmtrace.otlp.start { endpoint = %q, delay_ms = 1, close_ms = 100 })
for i = 1, 10 do vmtrace.finish(vmtrace.start("fn_call", "a" .. i)) end
vmtrace.otlp.flush(50)
assert(vmtrace.otlp.start { endpoint = %q, delay_ms = 1, close_ms = 100 })
]]):format(r.url, r.url))
        assert_child_ok(res)
        assert.matches("10 spans queued for .- were not delivered at exit", res.err)
      end
    end)

    it("with no exporter: stats() is nil, flush() and shutdown() are true", function()
      assert.is_nil(vmtrace.otlp.stats())
      assert.is_true(vmtrace.otlp.flush())
      assert.is_true(vmtrace.otlp.flush(0))
      assert.is_true(vmtrace.otlp.shutdown())
    end)
  end)

  ----------------------------------------------------------------------------
  describe("retries", function()
    it("503 twice then 200: the same batch is retried, delivered once, retries == 2", function()
      local r = start_receiver("--fail", "2")
      start_exporter { endpoint = r.url, backoff_ms = 10, max_retry_ms = 60000, delay_ms = 60000 }
      make_spans(20)
      assert.is_true(vmtrace.otlp.flush(30000))
      local st = vmtrace.otlp.stats()
      assert.equal(2, st.retries)
      assert.equal(20, st.exported)
      assert.equal(0, st.failed_batches)
      assert.equal(0, st.failed_spans)
      assert.equal(0, st.dropped)
      assert.equal(1, st.batches)
      local recs = records(r)
      assert.same({ 503, 503, 200 }, { recs[1].status, recs[2].status, recs[3] and recs[3].status }, summary(r))
      assert.equal(3, #recs, summary(r))
      -- a retried batch is the same batch: the same bytes every time
      assert.equal(body_bytes(r, 1), body_bytes(r, 2))
      assert.equal(body_bytes(r, 1), body_bytes(r, 3))
      assert_delivered_exactly(r, local_spans())
    end)

    for _, status in ipairs({ 429, 502, 504 }) do
      it(("retries a batch answered %d"):format(status), function()
        local r = start_receiver("--fail", "1", "--status", tostring(status))
        start_exporter { endpoint = r.url, backoff_ms = 10, max_retry_ms = 60000, delay_ms = 60000 }
        make_spans(7)
        assert.is_true(vmtrace.otlp.flush(30000))
        local st = vmtrace.otlp.stats()
        assert.equal(1, st.retries)
        assert.equal(7, st.exported)
        assert.equal(0, st.failed_batches)
        local recs = records(r)
        assert.equal(2, #recs)
        assert.same({ status, 200 }, { recs[1].status, recs[2].status })
        assert.equal(body_bytes(r, 1), body_bytes(r, 2))
        assert_delivered_exactly(r, local_spans())
      end)
    end

    it("429 with Retry-After: 1: retried once and delivered", function()
      local r = start_receiver("--fail", "1", "--status", "429", "--retry-after", "1")
      start_exporter { endpoint = r.url, backoff_ms = 1, max_retry_ms = 60000, delay_ms = 60000 }
      make_spans(5)
      assert.is_true(vmtrace.otlp.flush(30000))
      local st = vmtrace.otlp.stats()
      assert.equal(1, st.retries)
      assert.equal(5, st.exported)
      assert.same({ 429, 200 }, { records(r)[1].status, records(r)[2].status })
      assert_delivered_exactly(r, local_spans())
    end)

    it("never retries before Retry-After: one that ends past the export timeout gives the batch up", function()
      -- with backoff_ms = 1 a retry would come at once; Retry-After: 30 forbids
      -- it, and 30 s is past max_retry_ms
      local r = start_receiver("--fail", "1", "--status", "429", "--retry-after", "30")
      start_exporter { endpoint = r.url, backoff_ms = 1, max_retry_ms = 2000, delay_ms = 60000 }
      make_spans(5)
      assert.is_false(vmtrace.otlp.flush(30000), "a failed batch: flush says so")
      local st = vmtrace.otlp.stats()
      assert.equal(0, st.retries)
      assert.equal(0, st.exported)
      assert.equal(1, st.failed_batches)
      assert.equal(5, st.failed_spans)
      assert.equal(1, #records(r))
      assert.matches("429", st.last_error)
    end)

    it("honours a Retry-After given as an HTTP date", function()
      -- a date two minutes ahead: past max_retry_ms, so no retry may come
      local date = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 120)
      local r = start_receiver("--fail", "1", "--status", "503", "--retry-after", date)
      start_exporter { endpoint = r.url, backoff_ms = 1, max_retry_ms = 2000, delay_ms = 60000 }
      make_spans(5)
      assert.is_false(vmtrace.otlp.flush(30000), "a failed batch: flush says so")
      local st = vmtrace.otlp.stats()
      assert.equal(1, #records(r), "retried before the date Retry-After: " .. date .. " gave")
      assert.equal(0, st.retries)
      assert.equal(1, st.failed_batches)
      assert.equal(5, st.failed_spans)
    end)

    for _, status in ipairs({ 400, 401, 403, 404, 413, 500 }) do
      it(("does not retry a batch answered %d, counts it failed and never resends it"):format(status), function()
        local r = start_receiver("--fail", "1", "--status", tostring(status))
        start_exporter { endpoint = r.url, backoff_ms = 1, max_retry_ms = 60000, delay_ms = 60000 }
        make_spans(6, "refused_")
        assert.is_false(vmtrace.otlp.flush(30000), "a failed batch: flush says so")
        local st = vmtrace.otlp.stats()
        assert.equal(0, st.retries)
        assert.equal(0, st.exported)
        assert.equal(1, st.failed_batches)
        assert.equal(6, st.failed_spans)
        assert.equal(1, #records(r))
        assert.equal(status, records(r)[1].status)
        assert.matches(tostring(status), st.last_error)
        -- later spans go out; the refused ones are not sent again
        make_spans(4, "later_")
        assert.is_true(vmtrace.otlp.flush(30000))
        st = vmtrace.otlp.stats()
        assert.equal(4, st.exported)
        assert.equal(1, st.failed_batches)
        local recs = records(r)
        local list, seen = delivered(r)
        assert_no_duplicates(seen, r)
        assert.equal(4, #list, summary(r))
        for i = 2, #recs do assert.equal(200, recs[i].status, summary(r)) end
        for _, s in ipairs(list) do assert.matches("^later_", s.name) end
      end)
    end
  end)

  ----------------------------------------------------------------------------
  describe("a receiver that is down or hangs", function()
    local N, MAXQ = 100, 8

    --- Starts and finishes N spans: every call returns.
    local function burst()
      for i = 1, N do
        local id = vmtrace.start("fn_call", "burst_" .. i)
        assert.is_true(id > 0)
        assert.is_number(vmtrace.finish(id))
      end
    end

    local function assert_accounted(st)
      assert.equal(0, st.exported)
      assert.is_true(st.dropped > 0, "spans past the queue are dropped and counted")
      assert.equal(N, st.dropped + st.queued + st.failed_spans,
        ("every span is dropped, queued or failed: %d + %d + %d"):format(st.dropped, st.queued, st.failed_spans))
    end

    it("down (a closed port): the script goes on, drops are counted, shutdown(200) is false", function()
      local url = closed_url()
      start_exporter { endpoint = url, max_queue = MAXQ, batch_size = 4, max_retry_ms = 600000 }
      burst()
      local st = vmtrace.otlp.stats()
      assert_accounted(st)
      assert.is_false(vmtrace.otlp.flush(100))
      for _ = 1, 600 do -- the first attempt's error, whenever it came
        st = vmtrace.otlp.stats()
        if st.last_error then break end
        nap()
      end
      assert_accounted(st)
      assert.matches("connect", (st.last_error or ""):lower())
      assert.is_false(vmtrace.otlp.shutdown(200))
      assert.is_nil(vmtrace.otlp.stats())
      -- tracing goes on
      assert.is_true(vmtrace.start("fn_call", "after") > 0)
    end)

    it("hanging (accepts and never answers): the script goes on, drops are counted, shutdown(200) is false", function()
      local r = start_receiver("--hang")
      start_exporter { endpoint = r.url, max_queue = MAXQ, batch_size = 4, timeout_ms = 600000,
                       max_retry_ms = 600000 }
      burst()
      assert_accounted(vmtrace.otlp.stats())
      assert.is_false(vmtrace.otlp.flush(100))
      assert_accounted(vmtrace.otlp.stats())
      assert.is_false(vmtrace.otlp.shutdown(200))
      for _, rec in ipairs(records(r)) do assert.equal(0, rec.status) end -- never answered
    end)

    it("a script whose receiver hangs still exits when the state closes", function()
      local r = start_receiver("--hang")
      local res = lua_child([[
vmtrace.enable()
assert(vmtrace.otlp.start { endpoint = arg[1], timeout_ms = 500, batch_size = 8 })
for i = 1, 50 do vmtrace.finish(vmtrace.start("fn_call", "x" .. i)) end
report { done = true }
]], {}, { r.url })
      assert_child_ok(res)
      assert.equal("true", res.report.done)
    end)

    it("spans dropped for a full queue are reported to the receiver as vmtrace.dropped_spans", function()
      -- the first batch waits a second for its retry (Retry-After: 1) and
      -- holds the whole queue meanwhile: the rest of the burst is dropped
      local r = start_receiver("--fail", "1", "--retry-after", "1")
      start_exporter { endpoint = r.url, max_queue = 64, batch_size = 64, delay_ms = 60000,
                       max_retry_ms = 60000 }
      for i = 1, 500 do vmtrace.finish(vmtrace.start("fn_call", "d" .. i)) end
      assert.is_true(vmtrace.otlp.flush(30000))
      local st = vmtrace.otlp.stats()
      assert.is_true(st.dropped > 0)
      assert.equal(500, st.exported + st.dropped)
      make_spans(3, "after_")
      assert.is_true(vmtrace.otlp.flush(30000))
      local recs = records(r)
      local last = recs[#recs]
      assert.equal(200, last.status)
      local attrs = attr_map(last.body.resourceSpans[1].resource.attributes)
      assert.same({ intValue = tostring(st.dropped) }, attrs["vmtrace.dropped_spans"])
    end)

    it("max_queue bounds the queue: at most max_queue spans wait, the rest are dropped", function()
      local url = closed_url()
      for _, maxq in ipairs({ MAXQ, 100 }) do
        start_exporter { endpoint = url, max_queue = maxq, batch_size = 4, max_retry_ms = 600000 }
        local n = maxq * 10
        for i = 1, n do vmtrace.finish(vmtrace.start("fn_call", "q" .. i)) end
        local st = vmtrace.otlp.stats()
        assert.is_true(st.queued <= maxq,
          ("max_queue = %d, but %d spans are queued"):format(maxq, st.queued))
        assert.is_true(st.dropped >= n - maxq,
          ("max_queue = %d, %d spans: at least %d dropped, got %d"):format(maxq, n, n - maxq, st.dropped))
        assert.is_false(vmtrace.otlp.shutdown(100))
      end
    end)
  end)

  ----------------------------------------------------------------------------
  describe("gzip", function()
    it("compression = 'gzip': bodies arrive gzipped and decode to every span", function()
      local r = start_receiver()
      start_exporter { endpoint = r.url, compression = "gzip", batch_size = 50, delay_ms = 50 }
      make_spans(120)
      assert.is_true(vmtrace.otlp.flush(30000))
      local recs = records(r)
      assert.is_true(#recs >= 3)
      for _, rec in ipairs(recs) do
        assert.is_true(rec.gzip)
        assert.equal("gzip", rec.headers["content-encoding"])
        assert.equal("application/json", rec.headers["content-type"])
        assert.is_nil(rec.bodyError)
        assert.is_table(rec.body)
      end
      assert_delivered_exactly(r, local_spans())
      for n = 1, #recs do verify(("%s/%d.json"):format(r.bodies, n)) end
    end)

    it("compression = 'none' (the default) sends plain JSON", function()
      local r = start_receiver()
      start_exporter { endpoint = r.url }
      make_spans(3)
      assert.is_true(vmtrace.otlp.flush(30000))
      for _, rec in ipairs(records(r)) do
        assert.is_false(rec.gzip)
        assert.is_nil(rec.headers["content-encoding"])
      end
      assert.equal(3, #delivered(r))
    end)

    it("OTEL_EXPORTER_OTLP_COMPRESSION=gzip turns gzip on", function()
      local r = start_receiver()
      local res = lua_child(export_child(), { OTEL_EXPORTER_OTLP_COMPRESSION = "gzip" }, { r.url, "10" })
      assert_child_ok(res)
      assert.equal("10", res.report.exported)
      for _, rec in ipairs(records(r)) do assert.is_true(rec.gzip) end
      assert.equal(10, #delivered(r))
    end)
  end)

  ----------------------------------------------------------------------------
  describe("headers", function()
    it("opts.headers arrive on every request, with Content-Type application/json", function()
      local r = start_receiver()
      start_exporter { endpoint = r.url, batch_size = 5, delay_ms = 50,
                       headers = { authorization = "Bearer tok-opts-123", ["x-tenant"] = "acme" } }
      make_spans(12)
      assert.is_true(vmtrace.otlp.flush(30000))
      local recs = records(r)
      assert.is_true(#recs >= 3)
      for _, rec in ipairs(recs) do
        assert.equal("Bearer tok-opts-123", rec.headers.authorization)
        assert.equal("acme", rec.headers["x-tenant"])
        assert.equal("application/json", rec.headers["content-type"])
      end
    end)

    it("OTEL_EXPORTER_OTLP_HEADERS arrive (percent-decoded); opts.headers win for the same name", function()
      local r = start_receiver()
      local res = lua_child(export_child(), {
        OTEL_EXPORTER_OTLP_HEADERS = "authorization=Bearer%20tok-env-456,x-tenant=env%2Cco",
      }, { r.url, "4" })
      assert_child_ok(res)
      local recs = records(r)
      assert.is_true(#recs >= 1)
      for _, rec in ipairs(recs) do
        assert.equal("Bearer tok-env-456", rec.headers.authorization)
        assert.equal("env,co", rec.headers["x-tenant"])
        assert.equal("application/json", rec.headers["content-type"])
      end

      local r2 = start_receiver()
      res = lua_child(export_child([[{ headers = { authorization = "Bearer tok-opts" } }]]), {
        OTEL_EXPORTER_OTLP_HEADERS = "authorization=Bearer%20tok-env,x-tenant=acme",
      }, { r2.url, "4" })
      assert_child_ok(res)
      for _, rec in ipairs(records(r2)) do
        assert.equal("Bearer tok-opts", rec.headers.authorization)
        assert.equal("acme", rec.headers["x-tenant"])
      end
    end)

    it("OTEL_EXPORTER_OTLP_TRACES_HEADERS adds to OTEL_EXPORTER_OTLP_HEADERS and wins for the same name", function()
      local r = start_receiver()
      local res = lua_child(export_child(), {
        OTEL_EXPORTER_OTLP_HEADERS = "authorization=Bearer%20general,x-tenant=acme",
        OTEL_EXPORTER_OTLP_TRACES_HEADERS = "authorization=Bearer%20traces,x-signal=traces",
      }, { r.url, "2" })
      assert_child_ok(res)
      local recs = records(r)
      assert.is_true(#recs >= 1)
      for _, rec in ipairs(recs) do
        assert.equal("Bearer traces", rec.headers.authorization)
        assert.equal("acme", rec.headers["x-tenant"])
        assert.equal("traces", rec.headers["x-signal"])
      end
    end)

    it("header names are case-insensitive: opts.headers.Authorization replaces the environment's authorization", function()
      local r = start_receiver("--raw-headers")
      local res = lua_child(export_child([[{ headers = { Authorization = "Bearer opts" } }]]), {
        OTEL_EXPORTER_OTLP_HEADERS = "authorization=Bearer%20env",
      }, { r.url, "2" })
      assert_child_ok(res)
      local recs = records(r)
      assert.is_true(#recs >= 1)
      for _, rec in ipairs(recs) do
        local sent = {}
        for i = 1, #rec.rawHeaders, 2 do
          if rec.rawHeaders[i]:lower() == "authorization" then sent[#sent + 1] = rec.rawHeaders[i + 1] end
        end
        assert.same({ "Bearer opts" }, sent, "the Authorization header lines sent")
      end
    end)

    it("an invalid header is refused with a message naming the header, never its value", function()
      local SECRET = "sek-ret-789"
      local cases = {
        { ["x-api-key"] = SECRET .. "\r\nX-Injected: 1" },
        { ["x-api-key"] = "Bearer " .. SECRET .. "\n" },
        { ["bad header"] = SECRET },
        { ["x-api-key:"] = SECRET },
      }
      for _, headers in ipairs(cases) do
        local name = next(headers)
        local err = helper.assert_bad_argument(function()
          vmtrace.otlp.start { endpoint = "http://127.0.0.1:9/v1/traces", headers = headers }
        end, "otlp.start", 1, name)
        assert.is_nil(err:find(SECRET, 1, true), "the message shows the header's value: " .. err)
      end
      assert.is_nil(vmtrace.otlp.stats(), "no exporter was started")
    end)

    it("an invalid OTEL_EXPORTER_OTLP_HEADERS value is refused without showing it", function()
      local res = lua_child([[
vmtrace.enable()
local ok, err = pcall(vmtrace.otlp.start, { endpoint = "http://127.0.0.1:9/v1/traces" })
report { ok = ok, err = tostring(err):gsub("\n", " ") }
]], { OTEL_EXPORTER_OTLP_HEADERS = "x-api-key=sek%0Aret-789" })
      assert_child_ok(res)
      assert.equal("false", res.report.ok)
      assert.matches("vmtrace.otlp.start", res.report.err, 1, true)
      assert.matches("x-api-key", res.report.err, 1, true)
      assert.is_nil(res.out:find("ret-789", 1, true), res.out)
      assert.is_nil(res.out:find("sek", 1, true), res.out)
    end)

    it("header values never appear in stats().last_error", function()
      local SECRET = "tok-sekrit-42"
      -- refused (401), then down
      local r = start_receiver("--fail", "1", "--status", "401")
      start_exporter { endpoint = r.url, delay_ms = 60000, headers = { authorization = "Bearer " .. SECRET } }
      make_spans(2)
      assert.is_false(vmtrace.otlp.flush(30000), "a failed batch: flush says so")
      local st = vmtrace.otlp.stats()
      assert.equal(1, st.failed_batches)
      assert.is_string(st.last_error)
      assert.is_nil(st.last_error:find(SECRET, 1, true), st.last_error)
      assert.equal("Bearer " .. SECRET, records(r)[1].headers.authorization) -- it was sent
      start_exporter { endpoint = closed_url(), headers = { authorization = "Bearer " .. SECRET },
                       backoff_ms = 1, max_retry_ms = 50 }
      make_spans(2)
      assert.is_false(vmtrace.otlp.flush(30000), "nothing could be delivered")
      st = vmtrace.otlp.stats()
      assert.is_string(st.last_error)
      assert.is_nil(st.last_error:find(SECRET, 1, true), st.last_error)
    end)

    it("a failing child process never prints a header value", function()
      local SECRET1, SECRET2 = "env-sekrit-1", "opt-sekrit-2"
      local url = closed_url()
      local res = lua_child([[
vmtrace.enable()
assert(vmtrace.otlp.start { endpoint = arg[1], timeout_ms = 200, backoff_ms = 1, max_retry_ms = 100,
                            headers = { ["x-other"] = arg[2] } })
for i = 1, 20 do vmtrace.finish(vmtrace.start("fn_call", "x" .. i)) end
vmtrace.otlp.flush(5000)
report(vmtrace.otlp.stats())
]], { OTEL_EXPORTER_OTLP_HEADERS = "authorization=Bearer%20" .. SECRET1 }, { url, SECRET2 })
      assert_child_ok(res)
      assert.is_truthy(res.report.last_error, res.out)
      for _, s in ipairs({ SECRET1, SECRET2 }) do
        assert.is_nil(res.out:find(s, 1, true), res.out)
        assert.is_nil(res.err:find(s, 1, true), res.err)
      end
    end)
  end)

  ----------------------------------------------------------------------------
  describe("resource and endpoint", function()
    local function resource_of(r)
      local recs = records(r)
      assert.is_true(#recs >= 1, "no request arrived")
      local res = recs[1].body.resourceSpans
      assert.equal(1, #res)
      return attr_map(res[1].resource.attributes)
    end

    it("service.name and resource attributes from opts", function()
      local r = start_receiver()
      start_exporter { endpoint = r.url, service_name = "checkout-agent",
                       resource = { ["deployment.environment"] = "test", ["service.version"] = "1.2.3",
                                    replicas = 3 } }
      make_spans(2)
      assert.is_true(vmtrace.otlp.flush(30000))
      local a = resource_of(r)
      assert.same({ stringValue = "checkout-agent" }, a["service.name"])
      assert.same({ stringValue = "test" }, a["deployment.environment"])
      assert.same({ stringValue = "1.2.3" }, a["service.version"])
      assert.same({ intValue = "3" }, a.replicas)
      assert.same({ stringValue = "vmtrace" }, a["telemetry.sdk.name"])
    end)

    it("service.name and resource attributes from OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES", function()
      local r = start_receiver()
      local res = lua_child(export_child(), {
        OTEL_SERVICE_NAME = "env-agent",
        OTEL_RESOURCE_ATTRIBUTES = "deployment.environment=staging,team=a%2Cb,service.name=ignored",
      }, { r.url, "3" })
      assert_child_ok(res)
      local a = resource_of(r)
      assert.same({ stringValue = "env-agent" }, a["service.name"])
      assert.same({ stringValue = "staging" }, a["deployment.environment"])
      assert.same({ stringValue = "a,b" }, a.team)
    end)

    it("service.name from OTEL_RESOURCE_ATTRIBUTES when OTEL_SERVICE_NAME is not set", function()
      local r = start_receiver()
      local res = lua_child(export_child(), { OTEL_RESOURCE_ATTRIBUTES = "service.name=from-attrs" },
        { r.url, "2" })
      assert_child_ok(res)
      assert.same({ stringValue = "from-attrs" }, resource_of(r)["service.name"])
    end)

    it("opts win over the environment; opts.resource adds to OTEL_RESOURCE_ATTRIBUTES", function()
      local r = start_receiver()
      local res = lua_child(export_child([[{ service_name = "opt-agent", resource = { team = "opts" } }]]), {
        OTEL_SERVICE_NAME = "env-agent",
        OTEL_RESOURCE_ATTRIBUTES = "team=env,region=eu",
      }, { r.url, "2" })
      assert_child_ok(res)
      local a = resource_of(r)
      assert.same({ stringValue = "opt-agent" }, a["service.name"])
      assert.same({ stringValue = "opts" }, a.team)
      assert.same({ stringValue = "eu" }, a.region)
    end)

    it("OTEL_EXPORTER_OTLP_ENDPOINT gets /v1/traces appended", function()
      local r = start_receiver()
      local base = ("http://127.0.0.1:%d"):format(r.port)
      for _, case in ipairs({ { base, "/v1/traces" }, { base .. "/", "/v1/traces" },
                              { base .. "/otlp", "/otlp/v1/traces" } }) do
        local before = #records(r)
        local res = lua_child(export_child(), { OTEL_EXPORTER_OTLP_ENDPOINT = case[1] }, { "", "2" })
        assert_child_ok(res)
        assert.equal("2", res.report.exported, case[1])
        local recs = records(r)
        assert.is_true(#recs > before, case[1])
        for i = before + 1, #recs do assert.equal(case[2], recs[i].url, case[1]) end
      end
    end)

    it("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as is, over OTEL_EXPORTER_OTLP_ENDPOINT", function()
      local r = start_receiver()
      local res = lua_child(export_child(), {
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = ("http://127.0.0.1:%d/custom/traces"):format(r.port),
        OTEL_EXPORTER_OTLP_ENDPOINT = closed_url(),
      }, { "", "3" })
      assert_child_ok(res)
      assert.equal("3", res.report.exported)
      for _, rec in ipairs(records(r)) do assert.equal("/custom/traces", rec.url) end
      assert.equal(3, #delivered(r))
    end)

    it("opts.endpoint wins over both variables", function()
      local r = start_receiver()
      local dead = closed_url()
      local res = lua_child(export_child(), {
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = dead, OTEL_EXPORTER_OTLP_ENDPOINT = dead,
      }, { r.url, "3" })
      assert_child_ok(res)
      assert.equal(3, #delivered(r))
    end)

    it("OTEL_BSP_MAX_EXPORT_BATCH_SIZE sets the batch size", function()
      local r = start_receiver()
      local res = lua_child(export_child(), { OTEL_BSP_MAX_EXPORT_BATCH_SIZE = "7" }, { r.url, "30" })
      assert_child_ok(res)
      local recs = records(r)
      assert.is_true(#recs >= 5, ("30 spans in batches of 7: %d requests"):format(#recs))
      for _, rec in ipairs(recs) do assert.is_true(#spans_of(rec.body) <= 7) end
      assert.equal(30, #delivered(r))
    end)
  end)

  ----------------------------------------------------------------------------
  describe("samplers", function()
    local REMOTE_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
    local REMOTE_SPAN = "00f067aa0ba902b7"
    local function header(flags) return ("00-%s-%s-%s"):format(REMOTE_TRACE, REMOTE_SPAN, flags) end

    -- Starts an exporter with opts, runs fn, flushes: the spans the receiver got.
    local function export_with(opts, fn)
      local r = start_receiver()
      opts.endpoint = r.url
      opts.delay_ms = opts.delay_ms or 50
      start_exporter(opts)
      vmtrace.reset() -- a new trace, sampled by this sampler
      fn()
      assert.is_true(vmtrace.otlp.flush(30000))
      local st = vmtrace.otlp.stats()
      local list, seen = delivered(r)
      assert_no_duplicates(seen)
      assert.equal(#list, st.exported)
      assert.equal(0, st.dropped)
      assert.equal(0, st.queued)
      return list, r
    end

    it("always_off exports nothing, and propagates sampled = 0", function()
      local list, r = export_with({ sampler = "always_off" }, function()
        local id = vmtrace.start("pipeline", "off")
        assert.matches("%-00$", vmtrace.traceparent(id))
        vmtrace.finish(id)
        make_spans(50)
      end)
      assert.equal(0, #list)
      assert.equal(0, #records(r), "not even an empty request")
      assert.equal(51, #vmtrace.spans(), "the spans are still recorded locally")
    end)

    it("always_on exports everything", function()
      local list = export_with({ sampler = "always_on" }, function() make_spans(30) end)
      assert.equal(30, #list)
    end)

    it("traceidratio 0 exports nothing, 1 everything", function()
      local list = export_with({ sampler = "traceidratio", sampler_arg = 0 }, function() make_spans(30) end)
      assert.equal(0, #list)
      list = export_with({ sampler = "traceidratio", sampler_arg = 1 }, function() make_spans(30) end)
      assert.equal(30, #list)
    end)

    it("traceidratio 0.5 keeps whole traces, exactly those whose traceparent says sampled", function()
      local flagged = {}
      local list = export_with({ sampler = "traceidratio", sampler_arg = 0.5 }, function()
        for _ = 1, 200 do
          vmtrace.reset()
          local root = vmtrace.start("pipeline", "t")
          local tp = vmtrace.traceparent(root)
          local child = vmtrace.start("step", "c")
          vmtrace.finish(child)
          vmtrace.finish(root)
          if tp:sub(-2) == "01" then flagged[tp:sub(4, 35)] = true
          else assert.equal("00", tp:sub(-2)) end
        end
      end)
      local per_trace = {}
      for _, s in ipairs(list) do per_trace[s.traceId] = (per_trace[s.traceId] or 0) + 1 end
      for t, n in pairs(per_trace) do
        assert.is_true(flagged[t], "exported a trace whose traceparent said not sampled: " .. t)
        assert.equal(2, n, "a sampled trace is exported whole")
      end
      assert.equal(count(flagged), count(per_trace))
      -- 200 traces at 0.5: far from every or none (a miss is ~1e-12 likely)
      assert.is_true(count(flagged) > 40 and count(flagged) < 160, "sampled " .. count(flagged) .. " of 200")
    end)

    it("parentbased_always_on follows a remote parent's sampled flag", function()
      local list = export_with({ sampler = "parentbased_always_on" }, function()
        assert.is_true(vmtrace.continue_trace(header("00")))
        local id = vmtrace.start("pipeline", "unsampled")
        assert.matches("%-00$", vmtrace.traceparent(id), "the decision is passed on")
        vmtrace.finish(id)
        make_spans(10)
      end)
      assert.equal(0, #list)
      list = export_with({ sampler = "parentbased_always_on" }, function()
        assert.is_true(vmtrace.continue_trace(header("01")))
        make_spans(10)
      end)
      assert.equal(10, #list)
      for _, s in ipairs(list) do
        assert.equal(REMOTE_TRACE, s.traceId)
        if s.name == "call_run" then assert.equal(REMOTE_SPAN, s.parentSpanId) end
      end
    end)

    it("the default sampler is parentbased_always_on", function()
      local list = export_with({}, function()
        assert.is_true(vmtrace.continue_trace(header("00")))
        make_spans(5)
      end)
      assert.equal(0, #list)
      list = export_with({}, function() make_spans(5) end) -- a root trace: sampled
      assert.equal(5, #list)
    end)

    it("parentbased_always_off: a sampled remote parent is followed, a root trace is not sampled", function()
      local list = export_with({ sampler = "parentbased_always_off" }, function() make_spans(5) end)
      assert.equal(0, #list)
      list = export_with({ sampler = "parentbased_always_off" }, function()
        assert.is_true(vmtrace.continue_trace(header("01")))
        make_spans(5)
      end)
      assert.equal(5, #list)
    end)

    it("parentbased_traceidratio: the remote parent decides, the ratio only for root traces", function()
      local list = export_with({ sampler = "parentbased_traceidratio", sampler_arg = 0 }, function()
        assert.is_true(vmtrace.continue_trace(header("01")))
        make_spans(5)
      end)
      assert.equal(5, #list)
      list = export_with({ sampler = "parentbased_traceidratio", sampler_arg = 1 }, function()
        assert.is_true(vmtrace.continue_trace(header("00")))
        make_spans(5)
      end)
      assert.equal(0, #list)
      list = export_with({ sampler = "parentbased_traceidratio", sampler_arg = 0 }, function() make_spans(5) end)
      assert.equal(0, #list)
    end)

    it("OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG from the environment", function()
      local r = start_receiver()
      local res = lua_child(export_child(), { OTEL_TRACES_SAMPLER = "always_off" }, { r.url, "20" })
      assert_child_ok(res)
      assert.equal("0", res.report.exported)
      res = lua_child(export_child(), { OTEL_TRACES_SAMPLER = "traceidratio", OTEL_TRACES_SAMPLER_ARG = "0" },
        { r.url, "20" })
      assert_child_ok(res)
      assert.equal("0", res.report.exported)
      assert.equal(0, #records(r))
      res = lua_child(export_child(), { OTEL_TRACES_SAMPLER = "traceidratio", OTEL_TRACES_SAMPLER_ARG = "1" },
        { r.url, "20" })
      assert_child_ok(res)
      assert.equal("20", res.report.exported)
      assert.equal(20, #delivered(r))
    end)
  end)

  ----------------------------------------------------------------------------
  describe("what the receiver got, decoded with the OpenTelemetry definitions", function()
    it("every body passes verify.js and holds the same spans as export('otlp')", function()
      local r = start_receiver()
      start_exporter { endpoint = r.url, service_name = "verify-agent", batch_size = 4, delay_ms = 50,
                       resource = { ["deployment.environment"] = "ci", shards = 2, ratio = 0.5, on = true } }
      vmtrace.mock_time(1700000000000)
      local run_id = vmtrace.start("pipeline", "fix_failing_test")
      vmtrace.set_metadata(run_id, "max", math.maxinteger)
      vmtrace.set_metadata(run_id, "min", math.mininteger)
      vmtrace.set_metadata(run_id, "nested", { a = { b = { 1, "two", { c = true } } }, x = 0.5 })
      vmtrace.set_metadata(run_id, "raw", "a\0b\255c")
      vmtrace.set_metadata(run_id, "nothing", vmtrace.null)
      vmtrace.advance_time(1)
      local llm = vmtrace.start("llm_call", "plan")
      vmtrace.llm_usage(llm, { model = "claude-sonnet-4", provider = "anthropic", input_tokens = 2400,
                               output_tokens = 310, cost_usd = 0.0125 })
      vmtrace.record_event(llm, "first_token", { latency_ms = 120, tags = { "a", "b" } })
      vmtrace.advance_time(20)
      vmtrace.finish(llm)
      local link = vmtrace.span_link(run_id)
      local tool = vmtrace.start("tool_call", "grep", { links = { link,
        { trace_id = "4bf92f3577b34da6a3ce929d0e0e4736", span_id = "00f067aa0ba902b7", attributes = { why = "x" } } } })
      vmtrace.set_metadata(tool, "status", "error")
      vmtrace.set_metadata(tool, "error", "exit 2")
      vmtrace.advance_time(3)
      vmtrace.finish(tool)
      vmtrace.marker("model_route", "route", { from_model = "a", to_model = "b" })
      for i = 1, 6 do -- plain spans (no metadata): the other path into the queue
        vmtrace.advance_time(1)
        vmtrace.finish(vmtrace.start("step", "plain_" .. i))
      end
      vmtrace.advance_time(1)
      vmtrace.finish(run_id)
      vmtrace.unmock_time()
      assert.is_true(vmtrace.otlp.flush(30000))

      local recs = records(r)
      assert.is_true(#recs >= 3)
      local got = {}
      for n = 1, #recs do
        local path = ("%s/%d.json"):format(r.bodies, n)
        verify(path)
        local body = decode(read(path), "a request body")
        for _, s in ipairs(spans_of(body)) do
          assert.is_nil(got[s.spanId], "delivered twice: " .. s.spanId)
          got[s.spanId] = s
        end
        assert.same(attr_map(decode(vmtrace.export("otlp", nil, {
          service_name = "verify-agent",
          resource = { ["deployment.environment"] = "ci", shards = 2, ratio = 0.5, on = true },
        }), "export").resourceSpans[1].resource.attributes), attr_map(body.resourceSpans[1].resource.attributes))
      end
      local want = spans_of(decode(vmtrace.export("otlp"), "the OTLP export"))
      assert.equal(#want, count(got))
      for _, s in ipairs(want) do
        assert.same(s, got[s.spanId], "span " .. s.name .. " differs from the file export")
      end
    end)
  end)

  ----------------------------------------------------------------------------
  describe("bad arguments", function()
    local URL = "http://127.0.0.1:9/v1/traces"
    local function bad(opts, ...)
      return helper.assert_bad_argument(function() vmtrace.otlp.start(opts) end, "otlp.start", 1, ...)
    end

    it("raise errors naming vmtrace.otlp.start", function()
      helper.assert_bad_argument(function() vmtrace.otlp.start("x") end, "otlp.start", 1, "table")
      bad({ endpoint = URL, endpiont = "x" }, "unknown option", "endpiont")
      bad({ endpoint = URL, compression = "brotli" }, "compression", "brotli")
      bad({ endpoint = URL, compression = true }, "compression")
      bad({ endpoint = URL, sampler = "sometimes" }, "sampler", "sometimes")
      bad({ endpoint = URL, sampler = "traceidratio", sampler_arg = 2 }, "sampler")
      bad({ endpoint = URL, sampler = "traceidratio", sampler_arg = "half" }, "sampler")
      bad({ endpoint = URL, timeout_ms = -1 }, "timeout_ms")
      bad({ endpoint = URL, timeout_ms = 0 }, "timeout_ms")
      bad({ endpoint = URL, timeout_ms = 1.5 }, "timeout_ms")
      bad({ endpoint = URL, timeout_ms = "soon" }, "timeout_ms")
      bad({ endpoint = URL, batch_size = 0 }, "batch_size")
      bad({ endpoint = URL, max_queue = -5 }, "max_queue")
      bad({ endpoint = URL, delay_ms = "later" }, "delay_ms")
      bad({ endpoint = 42 }, "string")
      bad({ endpoint = URL, headers = "authorization: x" }, "table")
      bad({ endpoint = URL, resource = "team=x" }, "table")
      assert.is_nil(vmtrace.otlp.stats(), "nothing was started")
    end)

    it("flush and shutdown check their timeout", function()
      helper.assert_bad_argument(function() vmtrace.otlp.flush(-1) end, "otlp.flush", 1, "timeout")
      helper.assert_bad_argument(function() vmtrace.otlp.flush("soon") end, "otlp.flush", 1, "timeout")
      helper.assert_bad_argument(function() vmtrace.otlp.shutdown(-1) end, "otlp.shutdown", 1, "timeout")
    end)

    it("a bad start leaves the running exporter as it was", function()
      local r = start_receiver()
      start_exporter { endpoint = r.url, delay_ms = 50 }
      bad({ endpoint = URL, sampler = "sometimes" }, "sampler")
      bad({ endpoint = URL, bogus = 1 }, "bogus")
      make_spans(4)
      assert.is_true(vmtrace.otlp.flush(30000))
      assert.equal(4, vmtrace.otlp.stats().exported)
      assert.equal(4, #delivered(r))
    end)

    it("an empty endpoint returns nil and a message naming vmtrace.otlp.start", function()
      local ok, err = vmtrace.otlp.start { endpoint = "" }
      assert.is_nil(ok)
      assert.matches("^vmtrace%.otlp%.start: ", err)
      assert.is_nil(vmtrace.otlp.stats())
    end)

    it("a bad OTEL_EXPORTER_OTLP_TIMEOUT is an error naming the variable", function()
      local res = lua_child([[
vmtrace.enable()
local ok, err = pcall(vmtrace.otlp.start, { endpoint = "http://127.0.0.1:9/v1/traces" })
report { ok = ok, err = tostring(err):gsub("\n", " ") }
]], { OTEL_EXPORTER_OTLP_TIMEOUT = "soon" })
      assert_child_ok(res)
      assert.equal("false", res.report.ok)
      assert.matches("vmtrace.otlp.start", res.report.err, 1, true)
      assert.matches("OTEL_EXPORTER_OTLP_TIMEOUT", res.report.err, 1, true)
    end)

    it("a bad OTEL_TRACES_SAMPLER is an error naming the sampler", function()
      local res = lua_child([[
vmtrace.enable()
local ok, err = pcall(vmtrace.otlp.start, { endpoint = "http://127.0.0.1:9/v1/traces" })
report { ok = ok, err = tostring(err):gsub("\n", " ") }
]], { OTEL_TRACES_SAMPLER = "sometimes" })
      assert_child_ok(res)
      assert.equal("false", res.report.ok)
      assert.matches("vmtrace.otlp.start", res.report.err, 1, true)
      assert.matches("sometimes", res.report.err, 1, true)
    end)
  end)

  ----------------------------------------------------------------------------
  describe("ownership and one table of defaults (issue 9)", function()
    it("spans queued before a load keep their names: the queue owns what it holds", function()
      local r = start_receiver()
      start_exporter { endpoint = r.url, delay_ms = 60000, batch_size = 512 }
      for i = 1, 50 do vmtrace.finish(vmtrace.start("fn_call", ("queued-%03d"):format(i))) end
      assert.equal(50, vmtrace.otlp.stats().queued)
      -- a file with other names replaces the collector's names and spans
      local other = tmp("other.json")
      write(other, vmtrace.export("json"):gsub("queued%-", "loaded-"))
      assert.equal(50, (vmtrace.load(other)))
      collectgarbage()
      assert.is_true(vmtrace.otlp.flush(30000))
      local names = {}
      for _, s in ipairs(delivered(r)) do names[#names + 1] = s.name end
      table.sort(names)
      assert.equal(50, #names)
      for i = 1, 50 do assert.equal(("queued-%03d"):format(i), names[i]) end
    end)

    it("max_retry_ms = 0 means no retry at all", function()
      local r = start_receiver("--fail", "5", "--status", "503")
      start_exporter { endpoint = r.url, max_retry_ms = 0, backoff_ms = 1, delay_ms = 60000 }
      make_spans(3)
      assert.is_false(vmtrace.otlp.flush(30000))
      local st = vmtrace.otlp.stats()
      assert.equal(0, st.retries)
      assert.equal(1, st.failed_batches)
      assert.equal(1, #records(r))
    end)

    it("require \"vmtrace\" works without the exporter module; otlp.start names what is missing", function()
      local dir = tmp("cpath")
      assert(os.execute("mkdir -p " .. q(dir .. "/vmtrace")))
      assert(os.execute("cp " .. q(package.searchpath("vmtrace.core", package.cpath)) .. " " .. q(dir .. "/vmtrace/core.so")))
      local script, out = tmp("nocurl.lua"), tmp("nocurl.out")
      write(script, [[
package.cpath = arg[1] .. "/?.so"
local vmtrace = require "vmtrace"
vmtrace.enable()
vmtrace.finish(vmtrace.start("pipeline", "fine without libcurl"))
io.write(vmtrace.summary(), "\n")
local ok, err = pcall(vmtrace.otlp.start, { endpoint = "http://127.0.0.1:9/v1/traces" })
io.write("start=", tostring(ok), "\n", tostring(err), "\n")
]])
      local code = run("env LUA_PATH=" .. q(package.path) .. " lua5.4 " .. q(script) .. " " .. q(dir) .. " >" .. q(out) .. " 2>&1")
      local text = read(out)
      assert.equal(0, code, text)
      assert.matches("pipeline fine without libcurl", text, 1, true)
      assert.matches("start=false", text, 1, true)
      assert.matches("vmtrace.otlp.start: cannot load the OTLP/HTTP exporter module vmtrace.otlp_http", text, 1, true)
      assert.matches("libcurl", text, 1, true)
    end)
  end)

  describe("faults, exit and fork (issue 10)", function()
    local function now() return vmtrace.monotonic_ms() end

    it("bounds the queue by bytes too: big spans past max_queue_bytes are dropped and counted", function()
      local r = start_receiver("--hang")
      start_exporter { endpoint = r.url, max_queue_bytes = 4 * 1024 * 1024, delay_ms = 60000,
                       timeout_ms = 60000, close_ms = 0 }
      local big = ("x"):rep(1024 * 1024)
      for i = 1, 20 do
        local id = vmtrace.start("llm_call", "prompt" .. i)
        vmtrace.set_metadata(id, "prompt", big)
        vmtrace.finish(id)
      end
      local st = vmtrace.otlp.stats()
      assert.is_true(st.queued_bytes <= 4 * 1024 * 1024, "queued " .. st.queued_bytes .. " bytes")
      assert.is_true(st.queued >= 3 and st.queued <= 4, "queued " .. st.queued)
      assert.equal(20 - st.queued, st.dropped)
    end)

    it("flush(t) and shutdown(t) keep their deadline against a collector that never answers", function()
      local r = start_receiver("--hang")
      start_exporter { endpoint = r.url, delay_ms = 1, timeout_ms = 60000, max_retry_ms = 60000 }
      make_spans(10)
      nap()
      local t0 = now()
      assert.is_false(vmtrace.otlp.flush(300))
      local took = now() - t0
      assert.is_true(took >= 290 and took < 800, "flush(300) took " .. took .. " ms")
      t0 = now()
      assert.is_false(vmtrace.otlp.shutdown(200))
      took = now() - t0
      assert.is_true(took < 700, "shutdown(200) took " .. took .. " ms")
    end)

    it("a second start does not wait for the first exporter's hanging collector", function()
      local hang = start_receiver("--hang")
      local r = start_receiver()
      start_exporter { endpoint = hang.url, delay_ms = 1, timeout_ms = 60000, max_retry_ms = 60000,
                       close_ms = 0 }
      make_spans(5, "first_")
      nap()
      local t0 = now()
      start_exporter { endpoint = r.url, delay_ms = 60000 }
      assert.is_true(now() - t0 < 1000, "the second start waited " .. (now() - t0) .. " ms")
      make_spans(5, "second_")
      assert.is_true(vmtrace.otlp.flush(30000))
      assert.equal(5, #delivered(r))
    end)

    it("any 2xx means delivered, even when its body is cut short: sent once, no retry", function()
      local r = start_receiver("--short-body")
      start_exporter { endpoint = r.url, delay_ms = 60000, backoff_ms = 1 }
      make_spans(4)
      assert.is_true(vmtrace.otlp.flush(30000))
      local st = vmtrace.otlp.stats()
      assert.same({ 4, 0, 0 }, { st.exported, st.retries, st.failed_batches })
      assert.equal(1, #records(r))
    end)

    it("sends User-Agent: vmtrace/<version>", function()
      local r = start_receiver()
      start_exporter { endpoint = r.url, delay_ms = 60000 }
      make_spans(2)
      assert.is_true(vmtrace.otlp.flush(30000))
      assert.equal("vmtrace/" .. vmtrace._VERSION, records(r)[1].headers["user-agent"])
    end)

    it("delivers what is queued at os.exit, and says what it could not", function()
      local r = start_receiver()
      local res = lua_child([[
vmtrace.enable()
assert(vmtrace.otlp.start { endpoint = arg[1], delay_ms = 60000 })
for i = 1, 25 do vmtrace.finish(vmtrace.start("fn_call", "before_exit_" .. i)) end
os.exit(7)
]], {}, { r.url })
      assert.equal(7, res.code, res.err)
      assert.equal(25, #delivered(r))
      assert.equal("", res.err)
      res = lua_child([[
vmtrace.enable()
assert(vmtrace.otlp.start { endpoint = arg[1], delay_ms = 60000, close_ms = 300 })
for i = 1, 9 do vmtrace.finish(vmtrace.start("fn_call", "lost_" .. i)) end
os.exit(0)
]], {}, { closed_url() })
      assert.equal(0, res.code)
      assert.matches("vmtrace: 9 spans queued for http://127.0.0.1:%d+/v1/traces were not delivered at exit", res.err)
    end)

    it("after fork, the child exports its own spans and the parent's queue is sent once", function()
      local r = start_receiver()
      local script, out, err = tmp("fork.lua"), tmp("fork.out"), tmp("fork.err")
      write(script, [[
package.path = arg[2]
package.cpath = arg[3]
local vmtrace = require "vmtrace"
vmtrace.enable()
assert(vmtrace.otlp.start { endpoint = arg[1], delay_ms = 60000 })
for i = 1, 10 do vmtrace.finish(vmtrace.start("fn_call", "parent_before_" .. i)) end
local pid = fork()
if pid == 0 then
  for i = 1, 7 do vmtrace.finish(vmtrace.start("fn_call", "child_" .. i)) end
  assert(vmtrace.otlp.flush(30000), "the child's flush")
  os.exit(0)
end
for i = 1, 3 do vmtrace.finish(vmtrace.start("fn_call", "parent_after_" .. i)) end
assert(wait(pid) == 0, "the child failed")
assert(vmtrace.otlp.flush(30000), "the parent's flush")
io.write("ok\n")
]])
      local code = run(("timeout 60 %s/build/fork_host %s %s %s %s >%s 2>%s"):format(ROOT, q(script),
        q(r.url), q(package.path), q(package.cpath), q(out), q(err)))
      assert.equal(0, code, (read(err) or "") .. (read(out) or ""))
      local seen = {}
      for _, sp in ipairs(delivered(r)) do seen[sp.name] = (seen[sp.name] or 0) + 1 end
      for i = 1, 10 do assert.equal(1, seen["parent_before_" .. i], "parent_before_" .. i) end
      for i = 1, 3 do assert.equal(1, seen["parent_after_" .. i], "parent_after_" .. i) end
      for i = 1, 7 do assert.equal(1, seen["child_" .. i], "child_" .. i) end
      assert.equal(20, count(seen))
    end)
  end)

  describe("processes that share a trace", function()
    local PER_CHILD = 33334

    local CHILD = [[
local endpoint, which, n = arg[1], arg[2], tonumber(arg[3])
vmtrace.enable() -- joins the trace of TRACEPARENT
assert(vmtrace.otlp.start { endpoint = endpoint, batch_size = 512, max_queue = 200000, delay_ms = 100 })
local root = vmtrace.start("pipeline", "worker_" .. which)
for _ = 1, n - 1 do vmtrace.finish(vmtrace.start("tool_call", "task_" .. which)) end
vmtrace.finish(root)
local flushed = vmtrace.otlp.flush(120000)
local st = vmtrace.otlp.stats()
st.flushed = flushed
st.trace = vmtrace.trace_id()
report(st)
io.write("shutdown=", tostring(vmtrace.otlp.shutdown(10000)), "\n")
]]

    it("three children started with the parent's traceparent export one trace, parented to it", function()
      local r = start_receiver()
      start_exporter { endpoint = r.url, batch_size = 512, delay_ms = 100 }
      local parent = vmtrace.start("pipeline", "orchestrator")
      local tp = vmtrace.traceparent()
      assert.is_string(tp)
      local trace, parent_span = tp:match("^00%-(%x+)%-(%x+)%-01$")
      assert.equal(trace_hex(vmtrace.trace_id()), trace)

      local script = tmp("worker.lua")
      write(script, PRELUDE .. CHILD)
      local jobs, outs, errs, rcs = {}, {}, {}, {}
      for i = 1, 3 do
        outs[i], errs[i], rcs[i] = tmp("worker.out"), tmp("worker.err"), tmp("worker.rc")
        jobs[i] = ("( %s; echo $? > %s ) &"):format(
          child_cmd(script, { TRACEPARENT = tp }, { r.url, tostring(i), tostring(PER_CHILD) }, outs[i], errs[i]),
          q(rcs[i]))
      end
      assert.is_true(os.execute(table.concat(jobs, " ") .. " wait"))
      vmtrace.finish(parent)
      assert.is_true(vmtrace.otlp.flush(30000))

      for i = 1, 3 do
        local out, err = read(outs[i]) or "", read(errs[i]) or ""
        assert.equal("0", (read(rcs[i]) or ""):match("%d+"), ("worker %d failed:\n%s\n%s"):format(i, out, err))
        local rep = {}
        for k, v in out:gmatch("([%w_]+)=([^\n]*)") do rep[k] = v end
        assert.equal("true", rep.flushed, out)
        assert.equal(tostring(PER_CHILD), rep.exported, out)
        assert.equal("0", rep.dropped, out)
        assert.equal("0", rep.failed_spans, out)
        assert.equal("true", rep.shutdown, out)
        assert.equal(vmtrace.trace_id(), rep.trace, "the worker took over the trace id")
      end

      -- the receiver's records, one request at a time
      local ids, traces, total, dups = {}, {}, 0, {}
      local roots, orchestrator = {}, nil
      local parent_of, worker_of = {}, {}
      for line in io.lines(r.record) do
        local rec = decode(line, "a receiver record")
        assert.equal(200, rec.status)
        for _, s in ipairs(spans_of(rec.body)) do
          total = total + 1
          traces[s.traceId] = true
          if ids[s.spanId] then dups[#dups + 1] = s.spanId end
          ids[s.spanId] = s.name
          local w = s.name:match("^worker_(%d)$")
          if w then roots[w] = s
          elseif s.name == "orchestrator" then orchestrator = s
          else
            local which = assert(s.name:match("^task_(%d)$"), s.name)
            parent_of[s.spanId], worker_of[s.spanId] = s.parentSpanId, which
          end
        end
      end
      assert.equal(3 * PER_CHILD + 1, total)
      assert.same({}, dups, "span id collisions")
      assert.equal(total, count(ids))
      assert.same({ [trace] = true }, traces, "one trace id for everything")
      assert.is_table(orchestrator)
      assert.equal(parent_span, orchestrator.spanId)
      assert.is_nil(orchestrator.parentSpanId)
      for i = 1, 3 do
        local root = roots[tostring(i)]
        assert.is_table(root, "worker " .. i .. "'s root span")
        assert.equal(parent_span, root.parentSpanId, "worker " .. i .. "'s root is parented to the parent's span")
      end
      local wrong = 0
      for id, p in pairs(parent_of) do
        if p ~= roots[worker_of[id]].spanId then wrong = wrong + 1 end
      end
      assert.equal(0, wrong, "tasks parented to their own worker's root")
    end)
  end)
end)
