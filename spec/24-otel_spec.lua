-- OpenTelemetry basics (issue 12): errors recorded as OpenTelemetry expects
-- (status, error.type, an exception event with a Lua traceback), span
-- limits in every OTLP output (configure{} over the OTEL_* variables),
-- explicit parents, the W3C tracestate, and the console exporter. What
-- depends on the environment or on stderr runs in a child lua5.4 process.

local vmtrace = require "vmtrace"
local timing = require "vmtrace.timing"
local helper = require "spec.helper"

local ROOT = helper.ROOT
local q = helper.shq

local REMOTE_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
local HEADER = ("00-%s-00f067aa0ba902b7-01"):format(REMOTE_TRACE)

--- Runs `script` (Lua source) in a child lua5.4 with the checkout's modules
-- and `env` ("NAME=value ..."): exit status, stdout, stderr.
local function child(script, env, cpath)
  local file, errf = os.tmpname(), os.tmpname()
  helper.write(file, script)
  local code, out = helper.run(("cd %s && env -u LD_PRELOAD -u OTEL_TRACES_EXPORTER -u TRACEPARENT "
      .. "-u TRACESTATE %s LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH=%s lua5.4 %s 2>%s")
    :format(q(ROOT), env or "", q(cpath or "build/?.so;;"), q(file), q(errf)))
  local err = helper.try_read(errf) or ""
  os.remove(file)
  os.remove(errf)
  return code, out, err
end

local function str(s) return { stringValue = s } end

local function events_named(span, name)
  local list = {}
  for _, e in ipairs(span.events or {}) do
    if e.name == name then list[#list + 1] = e end
  end
  return list
end

local function last_span() local s = vmtrace.spans() return s[#s] end

------------------------------------------------------------------------------
-- errors
------------------------------------------------------------------------------

describe("a span that ends by error", function()
  before_each(function() vmtrace.enable() end)

  local function raise_deep(e) error(e, 2) end
  local function fail_in_tool(e) raise_deep(e) end

  --- The start of a traceback's line for a one-line function: "file:line:".
  local function frame(fn)
    local i = debug.getinfo(fn, "S")
    return ("\n\t%s:%d:"):format(i.short_src, i.linedefined)
  end

  it("under with: status, message, and an exception event with the traceback of where it was raised", function()
    local ok, err = pcall(vmtrace.with, "tool_call", "grep", fail_in_tool, "no such file")
    assert.is_false(ok)
    local s = last_span()
    assert.same({ "error", err }, { s.metadata.status, s.metadata.error })
    local ex = events_named(s, "exception")
    assert.equal(1, #ex)
    local a = ex[1].attributes
    assert.equal("string", a["exception.type"])
    assert.equal(err, a["exception.message"])
    assert.matches("^stack traceback:\n", a["exception.stacktrace"])
    assert.matches(frame(fail_in_tool), a["exception.stacktrace"], 1, true)
    assert.matches("in upvalue 'raise_deep'", a["exception.stacktrace"], 1, true)
  end)

  it("under nested with: every span gets the traceback from where the error began", function()
    pcall(vmtrace.with, "step", "outer", function()
      vmtrace.with("tool_call", "inner", fail_in_tool, "deep")
    end)
    local by = {}
    for _, s in ipairs(vmtrace.spans()) do by[s.name] = s end
    for _, name in ipairs { "inner", "outer" } do
      local tb = events_named(by[name], "exception")[1].attributes["exception.stacktrace"]
      assert.matches(frame(fail_in_tool), tb, 1, true, name)
    end
  end)

  it("takes each error's own traceback (a retry raising the same message elsewhere)", function()
    local function first() error("timeout", 0) end
    local function second() error("timeout", 0) end
    pcall(vmtrace.with, "llm_call", "try1", first)
    pcall(vmtrace.with, "llm_call", "try2", second)
    local s = vmtrace.spans()
    local tb1 = events_named(s[1], "exception")[1].attributes["exception.stacktrace"]
    local tb2 = events_named(s[2], "exception")[1].attributes["exception.stacktrace"]
    assert.matches(frame(first), tb1, 1, true)
    assert.matches(frame(second), tb2, 1, true)
    assert.is_nil(tb2:find(frame(first), 1, true))
  end)

  it("in a <close> span: the traceback at __close time (the stack being closed)", function()
    local ok, err = pcall(function()
      local _ <close> = vmtrace.span("step", "closing")
      fail_in_tool("broken")
    end)
    assert.is_false(ok)
    local s = last_span()
    assert.same({ "error", err }, { s.metadata.status, s.metadata.error })
    local a = events_named(s, "exception")[1].attributes
    assert.same({ "string", err }, { a["exception.type"], a["exception.message"] })
    assert.matches("^stack traceback:\n", a["exception.stacktrace"])
  end)

  it("in timing.timed: the traceback of where it was raised, and the error raised again as it was", function()
    local obj = setmetatable({ code = 7 }, { __name = "QuotaError" })
    local ok, err = pcall(timing.timed, "embed", function() fail_in_tool(obj) end)
    assert.is_false(ok)
    assert.is_true(rawequal(obj, err))
    local s = last_span()
    local a = events_named(s, "exception")[1].attributes
    assert.equal("QuotaError", a["exception.type"])
    assert.equal('QuotaError {"code":7}', a["exception.message"])
    assert.matches(frame(fail_in_tool), a["exception.stacktrace"], 1, true)
  end)

  it("no exception event when the function returns", function()
    vmtrace.with("fn_call", "fine", function() return 1 end)
    assert.is_nil(last_span().events)
    assert.is_nil(last_span().metadata)
  end)

  describe("the error object", function()
    local function mark(e)
      local ok, got = pcall(vmtrace.with, "fn_call", "e", function() error(e, 0) end)
      assert.is_false(ok)
      assert.is_true(rawequal(e, got), "the error is raised again unchanged")
      local s = last_span()
      local a = events_named(s, "exception")[1].attributes
      assert.equal(s.metadata.error, a["exception.message"])
      return a["exception.type"], a["exception.message"]
    end

    it("a table with __tostring: its text; its metatable's __name as the type", function()
      local e = setmetatable({}, { __name = "HttpError", __tostring = function() return "HTTP 503" end })
      assert.same({ "HttpError", "HTTP 503" }, { mark(e) })
    end)

    it("a table of fields: a compact JSON rendering, its code as the type", function()
      assert.same({ "rate_limited", '{"code":"rate_limited","retry_after":3}' },
        { mark({ code = "rate_limited", retry_after = 3 }) })
      assert.same({ "429", '{"code":429}' }, { mark({ code = 429 }) })
      assert.same({ "table", '{"message":"x"}' }, { mark({ message = "x" }) })
    end)

    it("a long table: the rendering is cut at 1000 bytes", function()
      local _, msg = mark({ text = ("é"):rep(2000) })
      assert.equal(1000, #msg)
      assert.matches("%.%.%.$", msg)
      assert.is_truthy(utf8.len(msg), "still valid UTF-8")
    end)

    it("a table that cannot be rendered, or whose __tostring fails: its type", function()
      local cyclic = {}
      cyclic.self = cyclic
      assert.same({ "table", "(error object is a table value)" }, { mark(cyclic) })
      local bad = setmetatable({ n = 1 }, { __tostring = function() error("oops") end })
      assert.same({ "table", '{"n":1}' }, { mark(bad) })
    end)

    it("a number, a boolean, a userdata", function()
      assert.same({ "number", "42" }, { mark(42) })
      assert.same({ "boolean", "(error object is a boolean value)" }, { mark(true) })
      local t, m = mark(io.stdout)
      assert.equal("FILE*", t)
      assert.matches("^file %(", m)
    end)
  end)

  it("goes to OTLP as status ERROR, error.type and the exception event, as verify.js decodes it", function()
    pcall(vmtrace.with, "tool_call", "grep", fail_in_tool, "no such file")
    local h = timing.start("marked")
    timing.finish(h, { status = "error", error = "by hand" })
    local id = vmtrace.start("fn_call", "typed")
    vmtrace.set_metadata(id, "status", "error")
    vmtrace.set_metadata(id, "error.type", "timeout")
    vmtrace.finish(id)
    vmtrace.with("fn_call", "ok", function() end)
    local spans = helper.otlp_verified()
    local s = spans.grep
    assert.equal(2, s.status.code)
    assert.matches("no such file$", s.status.message)
    local a = helper.attr_map(s.attributes)
    assert.same(str("string"), a["error.type"])
    assert.equal(1, #s.events)
    local e = s.events[1]
    assert.equal("exception", e.name)
    local ea = helper.attr_map(e.attributes)
    assert.same(str("string"), ea["exception.type"])
    assert.same(str(s.status.message), ea["exception.message"])
    assert.matches(frame(fail_in_tool), ea["exception.stacktrace"].stringValue, 1, true)
    -- no exception event: the conventions' fallback; a script's own error.type wins
    assert.same(str("_OTHER"), helper.attr_map(spans.marked.attributes)["error.type"])
    assert.equal("by hand", spans.marked.status.message)
    assert.same(str("timeout"), helper.attr_map(spans.typed.attributes)["error.type"])
    assert.is_nil(spans.ok.status)
    assert.is_nil(helper.attr_map(spans.ok.attributes)["error.type"])
  end)
end)

------------------------------------------------------------------------------
-- limits
------------------------------------------------------------------------------

describe("span limits in OTLP output", function()
  before_each(function() vmtrace.enable() end)
  after_each(function()
    vmtrace.configure { attribute_count_limit = 128, attribute_value_length_limit = 0,
      event_count_limit = 128, link_count_limit = 128 }
  end)

  it("default as the SDK specification says: 128 attributes, no length limit, 128 events, 128 links", function()
    local code, out = child([[
      local vmtrace = require "vmtrace"
      local c = vmtrace.configure()
      io.write(c.attribute_count_limit, " ", c.attribute_value_length_limit, " ",
        c.event_count_limit, " ", c.link_count_limit)
    ]])
    assert.equal(0, code)
    assert.equal("128 0 128 128", out)
  end)

  it("cut a 2 MB prompt to the value length limit, in characters", function()
    vmtrace.configure { attribute_value_length_limit = 1000 }
    local id = vmtrace.start("llm_call", "plan")
    vmtrace.set_metadata(id, "prompt", ("é"):rep(1024 * 1024)) -- 2 MiB of UTF-8
    vmtrace.set_metadata(id, "messages", { { role = "user", content = ("x"):rep(5000) } })
    vmtrace.record_event(id, "chunk", { text = ("y"):rep(3000) })
    vmtrace.finish(id)
    local text = vmtrace.export("otlp")
    assert.is_true(#text < 20000, "the export is small: " .. #text .. " bytes")
    local spans = helper.otlp_verified()
    local a = helper.attr_map(spans.plan.attributes)
    assert.equal(("é"):rep(1000), a.prompt.stringValue)
    local msg = a.messages.arrayValue.values[1].kvlistValue.values
    assert.equal(1000, #helper.attr_map(msg).content.stringValue, "nested strings too")
    assert.equal(1000, #helper.attr_map(spans.plan.events[1].attributes).text.stringValue)
    -- the span in memory keeps everything
    assert.equal(2 * 1024 * 1024, #vmtrace.spans()[1].metadata.prompt)
  end)

  it("set droppedAttributesCount, droppedEventsCount and droppedLinksCount", function()
    local links = {}
    for i = 1, 130 do links[i] = { trace_id = vmtrace.trace_id(), span_id = tostring(i) } end
    local base = {}
    for i = 1, 130 do base[i] = vmtrace.start("step", "b" .. i) vmtrace.finish(base[i]) end
    local id = vmtrace.start("fn_call", "big", { links = links })
    for i = 1, 200 do vmtrace.set_metadata(id, ("k%03d"):format(i), i) end
    for i = 1, 131 do vmtrace.record_event(id, "e" .. i) end
    vmtrace.finish(id)
    local s = helper.otlp_verified().big
    assert.equal(128, #s.attributes)
    assert.equal(200 + 1 - 128, s.droppedAttributesCount) -- vmtrace.kind is one of them
    assert.equal(128, #s.events)
    assert.equal(3, s.droppedEventsCount)
    assert.equal(128, #s.links)
    assert.equal(2, s.droppedLinksCount)
    -- configure{} changes them
    vmtrace.configure { attribute_count_limit = 10, event_count_limit = 5, link_count_limit = false }
    s = helper.otlp_verified().big
    assert.same({ 10, 191, 5, 126, 130 }, { #s.attributes, s.droppedAttributesCount, #s.events,
      s.droppedEventsCount, #s.links })
    assert.is_nil(s.droppedLinksCount)
  end)

  it("configure{} wins over the environment, which wins over the defaults", function()
    local code, out, err = child([[
      local vmtrace = require "vmtrace"
      vmtrace.enable()
      local id = vmtrace.start("fn_call", "s")
      for i = 1, 20 do vmtrace.set_metadata(id, "k" .. i, ("v"):rep(50)) end
      vmtrace.finish(id)
      local function shape()
        local s = vmtrace.json_decode(vmtrace.export("otlp")).resourceSpans[1].scopeSpans[1].spans[1]
        return #s.attributes .. "/" .. #s.attributes[2].value.stringValue
      end
      io.write(shape(), " ")
      vmtrace.configure { attribute_count_limit = 10 }
      io.write(shape(), " ", vmtrace.configure().attribute_count_limit, " ",
        vmtrace.configure().attribute_value_length_limit)
    ]], "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT=5 OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT=7")
    assert.equal(0, code, err)
    assert.equal("5/7 10/7 10 7", out)
  end)

  it("a malformed variable is reported and the default applies", function()
    local code, out, err = child([[
      local vmtrace = require "vmtrace"
      vmtrace.enable()
      vmtrace.finish(vmtrace.start("fn_call", "s"))
      vmtrace.export("otlp")
      io.write(vmtrace.configure().event_count_limit)
    ]], "OTEL_SPAN_EVENT_COUNT_LIMIT=lots")
    assert.equal(0, code)
    assert.equal("128", out)
    assert.matches("ignoring OTEL_SPAN_EVENT_COUNT_LIMIT", err, 1, true)
  end)

  it("refuses a limit that is not an integer >= 0 or false", function()
    for _, bad in ipairs { -1, 1.5, "10", true } do
      helper.assert_bad_argument(function() vmtrace.configure { event_count_limit = bad } end,
        "configure", 1, "event_count_limit must be an integer >= 0, or false")
    end
    helper.assert_bad_argument(function() vmtrace.configure { attribute_limit = 1 } end,
      "configure", 1, "unknown setting 'attribute_limit'", "attribute_count_limit")
    assert.equal(128, vmtrace.configure().event_count_limit, "nothing was set")
    -- all or nothing: a bad limit sets no max_spans either
    helper.assert_bad_argument(function() vmtrace.configure { max_spans = 5, link_count_limit = -2 } end,
      "configure", 1, "link_count_limit")
    assert.equal(0, vmtrace.configure().max_spans)
  end)
end)

------------------------------------------------------------------------------
-- explicit parent
------------------------------------------------------------------------------

describe("an explicit parent", function()
  before_each(function() vmtrace.enable() end)

  it("may be an open span or a completed one", function()
    local p = vmtrace.start("pipeline", "run")
    local done = vmtrace.start("step", "done")
    vmtrace.finish(done)
    local a = vmtrace.start("llm_call", "a", { parent = p })
    local b = vmtrace.start("tool_call", "b", { parent = done })
    assert.equal(p, vmtrace.get(a).parent_id)
    assert.equal(done, vmtrace.get(b).parent_id)
    -- the new span becomes the current one of this coroutine
    assert.equal(b, vmtrace.current_span_id())
    local s <close> = vmtrace.span("fn_call", "scoped", { parent = done })
    assert.equal(done, vmtrace.get(s.id).parent_id)
  end)

  it("is an error when no such span was recorded", function()
    helper.assert_bad_argument(function() vmtrace.start("step", "x", { parent = 9999 }) end,
      "start", 3, "opts.parent: no span 9999")
    helper.assert_bad_argument(function() vmtrace.span("step", "x", { parent = 9999 }) end,
      "span", 3, "opts.parent: no span 9999")
    helper.assert_bad_argument(function() vmtrace.start("step", "x", { parent = "1" }) end,
      "start", 3, "opts.parent must be a span id")
    assert.equal(0, #vmtrace.spans())
  end)

  it("need not be on the current coroutine's stack (a scheduler's own coroutines)", function()
    local request
    local worker = coroutine.create(function()
      request = vmtrace.start("pipeline", "request") -- open on the worker's stack
      coroutine.yield()
      vmtrace.finish(request)
    end)
    coroutine.resume(worker)
    local handler = coroutine.wrap(function()
      local db = vmtrace.start("tool_call", "db", { parent = request })
      assert.equal(db, vmtrace.current_span_id())
      coroutine.yield(db)
      vmtrace.finish(db)
    end)
    local db = handler()
    local top = vmtrace.start("step", "main's own") -- main's stack is untouched by db
    assert.is_nil(vmtrace.get(top).parent_id)
    vmtrace.finish(top)
    handler()
    coroutine.resume(worker)
    assert.equal(request, vmtrace.get(db).parent_id)
    local spans = helper.otlp_verified()
    assert.equal(spans.request.spanId, spans.db.parentSpanId)
  end)

  it("wins over detached", function()
    local p = vmtrace.start("pipeline", "p")
    local c = vmtrace.start("step", "c", { parent = p, detached = true })
    assert.equal(p, vmtrace.get(c).parent_id)
  end)
end)

------------------------------------------------------------------------------
-- tracestate
------------------------------------------------------------------------------

describe("the W3C tracestate", function()
  before_each(function() vmtrace.enable() end)

  it("is kept from continue_trace and passed on by traceparent() and tracestate()", function()
    assert.is_true(vmtrace.continue_trace(HEADER, "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7"))
    assert.equal("congo=t61rcWkgMzE, rojo=00f067aa0ba902b7", vmtrace.tracestate())
    local id = vmtrace.start("pipeline", "run")
    local tp, ts = vmtrace.traceparent()
    assert.matches("^00%-" .. REMOTE_TRACE .. "%-", tp)
    assert.equal("congo=t61rcWkgMzE, rojo=00f067aa0ba902b7", ts)
    vmtrace.finish(id)
    -- every exported span carries it
    local s = helper.otlp_verified().run
    assert.equal("congo=t61rcWkgMzE, rojo=00f067aa0ba902b7", s.traceState)
  end)

  it("is absent without one, and a reset forgets it", function()
    vmtrace.continue_trace(HEADER)
    assert.is_nil(vmtrace.tracestate())
    assert.equal(1, select("#", vmtrace.traceparent()))
    vmtrace.continue_trace(HEADER, "k=v")
    vmtrace.reset()
    assert.is_nil(vmtrace.tracestate())
  end)

  it("an invalid tracestate is dropped and the traceparent kept", function()
    for _, bad in ipairs {
      "Upper=1",              -- keys are lowercase
      "k=",                   -- a value has at least one character
      "k=a,k=b",              -- one entry per key
      "k=a=b",                -- '=' in a value
      "1abc=x",               -- a simple key starts with a letter
      "t@1sys=x",             -- a system id starts with a letter
      "k=caf\xc3\xa9",        -- printable ASCII only
      ("a"):rep(257) .. "=x", -- keys have at most 256 characters
    } do
      assert.is_true(vmtrace.continue_trace(HEADER, bad), bad)
      assert.is_nil(vmtrace.tracestate(), bad)
      assert.equal("trace_4bf92f35-77b3-4da6-a3ce-929d0e0e4736", vmtrace.trace_id())
    end
  end)

  it("keeps 32 list-members and refuses 33", function()
    local m = {}
    for i = 1, 32 do m[i] = "k" .. i .. "=v" end
    vmtrace.continue_trace(HEADER, table.concat(m, ","))
    assert.equal(table.concat(m, ","), vmtrace.tracestate())
    m[33] = "k33=v"
    vmtrace.continue_trace(HEADER, table.concat(m, ","))
    assert.is_nil(vmtrace.tracestate())
  end)

  it("keeps multi-tenant keys, empty members and spaces as received", function()
    local ts = "tenant@vendor=abc , ,ot=th:c;rv:1, a_b-c*d/e=x y"
    vmtrace.continue_trace(HEADER, ts)
    assert.equal(ts, vmtrace.tracestate())
  end)

  it("keeps 512 characters, and cuts a longer one by whole entries: long ones first, then from the end", function()
    local function member(key, n) return key .. "=" .. ("v"):rep(n - #key - 1) end
    -- exactly 512 characters: kept as it is
    local exact = member("a", 255) .. "," .. member("b", 256)
    assert.equal(512, #exact)
    vmtrace.continue_trace(HEADER, exact)
    assert.equal(exact, vmtrace.tracestate())
    -- 600 characters: the entry over 128 characters goes first
    local long = member("big", 200)
    local small = {}
    for i = 1, 9 do small[i] = member("s" .. i, 43) end
    local ts = table.concat(small, ",", 1, 4) .. "," .. long .. "," .. table.concat(small, ",", 5, 9)
    assert.is_true(#ts > 512)
    vmtrace.continue_trace(HEADER, ts)
    assert.equal(table.concat(small, ","), vmtrace.tracestate())
    -- still too long without long entries: entries go from the end
    local many = {}
    for i = 1, 14 do many[i] = member("m" .. i, 40) end -- 14 * 41 - 1 = 573
    vmtrace.continue_trace(HEADER, table.concat(many, ","))
    assert.equal(table.concat(many, ",", 1, 12), vmtrace.tracestate()) -- 12 * 41 - 1 = 491
  end)

  it("is taken from TRACESTATE at enable, with TRACEPARENT", function()
    local code, out, err = child([[
      local vmtrace = require "vmtrace"
      vmtrace.enable()
      local tp, ts = vmtrace.traceparent()
      io.write(tostring(ts), "|", tostring(vmtrace.tracestate()), "|", vmtrace.trace_id())
    ]], "TRACEPARENT=" .. HEADER .. " TRACESTATE='vendor=abc,ot=th:8'")
    assert.equal(0, code, err .. out)
    assert.equal("vendor=abc,ot=th:8|vendor=abc,ot=th:8|trace_4bf92f35-77b3-4da6-a3ce-929d0e0e4736", out)
    code, out = child([[
      local vmtrace = require "vmtrace"
      vmtrace.enable()
      io.write(tostring(vmtrace.tracestate()), "|", vmtrace.trace_id())
    ]], "TRACEPARENT=" .. HEADER .. " TRACESTATE='Bad=1'")
    assert.equal(0, code)
    assert.equal("nil|trace_4bf92f35-77b3-4da6-a3ce-929d0e0e4736", out)
  end)
end)

------------------------------------------------------------------------------
-- the console exporter
------------------------------------------------------------------------------

describe("the console exporter", function()
  local SCRIPT = [[
    local vmtrace = require "vmtrace"
    vmtrace.enable()
    vmtrace.continue_trace("]] .. HEADER .. [[")
    print(vmtrace.otlp.start(%s))
    local run = vmtrace.start("pipeline", "run")
    local call = vmtrace.start("llm_call", "plan\nstep")
    vmtrace.set_metadata(call, "model", "m")
    vmtrace.finish(call)
    pcall(vmtrace.with, "tool_call", "grep", function() error("no match", 0) end)
    vmtrace.finish(run)
    print(package.loaded["vmtrace.otlp_http"] == nil and "no http module" or "http module")
  ]]

  local LINE = "^vmtrace: (%S+) (%b\"\") trace_id=(%x+) span_id=(%x+)(.-) duration_ms=(%d+%.%d%d%d)(.*)$"

  local function lines(text)
    local t = {}
    for l in text:gmatch("[^\n]+") do t[#t + 1] = l end
    return t
  end

  it("prints each finished span as one line on stderr, with kind, name, ids, duration and attributes", function()
    local code, out, err = child(SCRIPT:format('{ exporter = "console" }'))
    assert.equal(0, code, err)
    assert.equal("true\nno http module\n", out, "nothing on stdout, no libcurl module loaded")
    local l = lines(err)
    assert.equal(3, #l, err)
    local kind, name, trace, span, parent, dur, rest = l[1]:match(LINE)
    assert.equal("llm_call", kind, l[1])
    assert.equal('"plan\\nstep"', name, "a name with a line break stays on one line")
    assert.equal(REMOTE_TRACE, trace)
    assert.equal(16, #span)
    assert.matches("^ parent_span_id=%x+$", parent)
    assert.is_truthy(tonumber(dur))
    assert.equal(' attributes={"model":"m"}', rest)
    kind, name, _, _, _, _, rest = l[2]:match(LINE)
    assert.same({ "tool_call", '"grep"' }, { kind, name })
    assert.matches(" status=error events=1 attributes=", rest, 1, true)
    local _, _, _, root_span, root_parent = l[3]:match(LINE)
    assert.equal(" parent_span_id=00f067aa0ba902b7", root_parent, "the root's parent: the remote span")
    assert.equal(root_span, l[1]:match("parent_span_id=(%x+)"))
  end)

  it("is chosen by OTEL_TRACES_EXPORTER=console", function()
    local code, out, err = child(SCRIPT:format(""), "OTEL_TRACES_EXPORTER=console")
    assert.equal(0, code, err)
    assert.equal("true\nno http module\n", out)
    assert.equal(3, #lines(err))
  end)

  it("works without the OTLP/HTTP module (no libcurl)", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert.is_true(os.execute(("mkdir -p %s/vmtrace && cp build/vmtrace/core.so %s/vmtrace/")
      :format(q(dir), q(dir))))
    local code, out, err = child(SCRIPT:format('{ exporter = "console" }'), nil, dir .. "/?.so")
    assert.equal(0, code, err)
    assert.equal(3, #lines(err))
    code, out, err = child([[
      local vmtrace = require "vmtrace"
      print(pcall(vmtrace.otlp.start, { exporter = "otlp" }))
    ]], nil, dir .. "/?.so")
    assert.matches("cannot load the OTLP/HTTP exporter module", out, 1, true)
    os.execute("rm -rf " .. q(dir))
  end)

  it("exporter = \"none\" and OTEL_TRACES_EXPORTER=none start nothing", function()
    local code, out, err = child(SCRIPT:format('{ exporter = "none" }'))
    assert.equal(0, code, err)
    assert.equal("true\nno http module\n", out)
    assert.equal("", err)
    code, out, err = child(SCRIPT:format(""), "OTEL_TRACES_EXPORTER=none")
    assert.equal(0, code, err)
    assert.equal("true\nno http module\n", out)
    assert.equal("", err)
  end)

  it("stops with otlp.shutdown() and with a later start that does not name it", function()
    local code, _, err = child([[
      local vmtrace = require "vmtrace"
      vmtrace.enable()
      vmtrace.otlp.start { exporter = "console" }
      vmtrace.finish(vmtrace.start("step", "seen1"))
      vmtrace.otlp.shutdown()
      vmtrace.finish(vmtrace.start("step", "unseen1"))
      vmtrace.otlp.start { exporter = "console" }
      vmtrace.otlp.start { exporter = "console" } -- started twice: still one line per span
      vmtrace.finish(vmtrace.start("step", "seen2"))
      vmtrace.otlp.start { exporter = "none" }
      vmtrace.finish(vmtrace.start("step", "unseen2"))
    ]])
    assert.equal(0, code, err)
    local names = {}
    for _, l in ipairs(lines(err)) do names[#names + 1] = l:match('"(.-)"') end
    assert.same({ "seen1", "seen2" }, names)
  end)

  it("refuses an unknown exporter, naming where it came from", function()
    local code, out = child([[
      local vmtrace = require "vmtrace"
      print(select(2, pcall(vmtrace.otlp.start, { exporter = "zipkin" })))
      print(select(2, pcall(vmtrace.otlp.start, { exporter = 1 })))
      print(select(2, pcall(vmtrace.otlp.start)))
    ]], "OTEL_TRACES_EXPORTER=jaeger")
    assert.equal(0, code)
    local l = lines(out)
    assert.matches("vmtrace.otlp.start: bad argument #1 (unknown exporter 'zipkin' in opts.exporter (expected otlp, console, none))", l[1], 1, true)
    assert.matches("opts.exporter must be a string", l[2], 1, true)
    assert.matches("unknown exporter 'jaeger' in OTEL_TRACES_EXPORTER", l[3], 1, true)
  end)
end)

------------------------------------------------------------------------------
-- the OTLP/HTTP exporter writes the same spans
------------------------------------------------------------------------------

describe("the OTLP/HTTP exporter", function()
  it("sends the limits of configure{}, the GenAI attributes, exception events and the tracestate", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert.is_true(os.execute("mkdir -p " .. q(dir)))
    local record, outf, pidf = dir .. "/requests.jsonl", dir .. "/out", dir .. "/pid"
    local h = assert(io.popen(("echo $$ > %s; exec env -u LD_PRELOAD node %s --record %s > %s 2>&1")
      :format(q(pidf), q(ROOT .. "/tests/otlp/receiver.js"), q(record), q(outf)), "w"))
    local port
    for _ = 1, 600 do
      port = (helper.try_read(outf) or ""):match("listening (%d+)")
      if port then break end
      os.execute("sleep 0.05")
    end
    assert.is_truthy(port, "the receiver did not start: " .. (helper.try_read(outf) or ""))
    local ok, err = pcall(function()
      local code, out, cerr = child(([[
        local vmtrace = require "vmtrace"
        vmtrace.enable()
        vmtrace.continue_trace("%s", "vendor=abc")
        vmtrace.configure { attribute_value_length_limit = 30, event_count_limit = 1 }
        assert(vmtrace.otlp.start { endpoint = "http://127.0.0.1:%s/v1/traces", delay_ms = 10 })
        local id = vmtrace.start("llm_call", "plan")
        vmtrace.llm_usage(id, { model = "claude-sonnet-4-20250514", provider = "anthropic",
          input_tokens = 10, cache_read_tokens = 5 })
        vmtrace.set_metadata(id, "prompt", ("p"):rep(1000))
        vmtrace.record_event(id, "first_token")
        vmtrace.record_event(id, "second")
        vmtrace.finish(id)
        pcall(vmtrace.with, "tool_call", "grep", function() error("no match", 0) end)
        io.write(tostring(vmtrace.otlp.flush(20000)))
      ]]):format(HEADER, port))
      assert.equal(0, code, cerr)
      assert.equal("true", out, cerr)
      local spans = {}
      for line in (helper.try_read(record) or ""):gmatch("[^\n]+") do
        local r = vmtrace.json_decode(line)
        for _, s in ipairs(r.body.resourceSpans[1].scopeSpans[1].spans) do spans[s.name] = s end
      end
      local plan = spans.plan
      assert.is_table(plan, "the receiver got the llm_call span")
      assert.equal("vendor=abc", plan.traceState)
      local a = helper.attr_map(plan.attributes)
      assert.same(str(("p"):rep(30)), a.prompt, "configure{}'s value length limit")
      assert.same({ intValue = "15" }, a["gen_ai.usage.input_tokens"])
      assert.same(str("claude-sonnet-4-20250514"), a["gen_ai.request.model"])
      assert.equal(1, #plan.events)
      assert.equal(1, plan.droppedEventsCount, "configure{}'s event count limit")
      local grep = spans.grep
      assert.equal(2, grep.status.code)
      assert.same(str("string"), helper.attr_map(grep.attributes)["error.type"])
      assert.equal("exception", grep.events[1].name)
      assert.same(str("no match"), helper.attr_map(grep.events[1].attributes)["exception.message"])
    end)
    local pid = (helper.try_read(pidf) or ""):match("%d+")
    if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
    h:close()
    os.execute("rm -rf " .. q(dir))
    assert(ok, err)
  end)
end)
