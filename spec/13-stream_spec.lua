-- The crash-safe NDJSON stream (vmtrace.stream) and reading spans back
-- (vmtrace.load): the lines as they happen, what stream(nil) reports, load
-- round trips of JSON span files and streams, streams cut short by a crash
-- (also a real child process killed with SIGKILL), and load's error messages.

local vmtrace = require "vmtrace"
local helper = require "spec.helper"

local WALL = 1700000000000 -- the mock clock's wall time (ms)
local NS = 1000000

-- The checkout's root (absolute): bin/vmtrace and the module are found from it.
local ROOT = helper.ROOT

local q = helper.shq

local read = helper.read

local write = helper.write

-- The complete lines of a file (a last line without "\n" is left out).
local function lines(path)
  local t = {}
  for l in read(path):gmatch("([^\n]*)\n") do t[#t + 1] = l end
  return t
end

local function decode(line)
  local v, err = vmtrace.json_decode(line)
  assert(v, ("not JSON (%s): %s"):format(tostring(err), line))
  return v
end

-- The lines of a stream file decoded, with their text in .text.
local function records(path)
  local t = {}
  for i, l in ipairs(lines(path)) do
    t[i] = decode(l)
    t[i].text = l
  end
  return t
end

local function of_type(recs, typ)
  local t = {}
  for _, r in ipairs(recs) do
    if r.type == typ then t[#t + 1] = r end
  end
  return t
end

-- The text of the span object inside a start/end line.
local function span_text(line)
  return line:match('^{"type":"%a+","span":(.*)}$')
end

-- The span lines of vmtrace.export("json") (one span per line) by span id.
local function export_lines()
  local t = {}
  for l in vmtrace.export("json"):gmatch("[^\n]+") do
    local obj = l:match("^({.*}),?$")
    if obj then t[tonumber(obj:match('"span_id":(%d+)'))] = obj end
  end
  return t
end

-- Replace each invalid UTF-8 byte of s by U+FFFD (what the JSON writers do).
local function fffd(s)
  local out, i = {}, 1
  while i <= #s do
    local ok, cp = pcall(utf8.codepoint, s, i) -- strict: no overlongs, no surrogates
    if ok then
      local n = #utf8.char(cp)
      out[#out + 1] = s:sub(i, i + n - 1)
      i = i + n
    else
      out[#out + 1] = "\u{FFFD}"
      i = i + 1
    end
  end
  return table.concat(out)
end

-- Each test starts enabled under a mock clock with no stream, and leaves
-- nothing behind; tmp() names a temporary file removed afterwards.
local function fixture()
  local files = {}
  before_each(function()
    vmtrace.stream(nil)
    vmtrace.mock_time(WALL)
    vmtrace.enable()
  end)
  after_each(function()
    vmtrace.stream(nil)
    while vmtrace.unmock_time() do end
    vmtrace.disable()
    for i = #files, 1, -1 do
      os.remove(files[i])
      files[i] = nil
    end
  end)
  return function()
    local p = os.tmpname()
    files[#files + 1] = p
    return p
  end
end

describe("vmtrace.stream", function()
  local tmp = fixture()

  it("writes the header, then each start and end the moment it happens", function()
    local path = tmp()
    assert.is_true(vmtrace.stream(path))

    local recs = records(path)
    assert.equal(1, #recs)
    assert.equal("trace", recs[1].type)
    assert.equal(vmtrace.trace_id(), recs[1].trace_id)
    assert.matches("^%x+$", recs[1].otel_salt)
    assert.equal(16, #recs[1].otel_salt)

    local run = vmtrace.start("pipeline", "run")
    recs = records(path)
    assert.equal(2, #recs)
    assert.equal("start", recs[2].type)
    assert.equal(run, recs[2].span.span_id)
    assert.equal("pipeline", recs[2].span.kind)
    assert.equal("run", recs[2].span.name)
    assert.equal(vmtrace.trace_id(), recs[2].span.trace_id)
    assert.equal(WALL, recs[2].span.start_unix_ms)
    assert.is_nil(recs[2].span.duration_ms) -- still open
    assert.is_nil(recs[2].span.parent_id)

    vmtrace.advance_time(5)
    local call = vmtrace.start("llm_call", "plan")
    recs = records(path)
    assert.equal(3, #recs)
    assert.equal("start", recs[3].type)
    assert.equal(call, recs[3].span.span_id)
    assert.equal(run, recs[3].span.parent_id)
    assert.equal(WALL + 5, recs[3].span.start_unix_ms)

    vmtrace.advance_time(3)
    vmtrace.finish(call)
    recs = records(path)
    assert.equal(4, #recs)
    assert.equal("end", recs[4].type)
    assert.equal(call, recs[4].span.span_id)
    assert.equal(3, recs[4].span.duration_ms)
    assert.equal(3 * NS, recs[4].span.duration_ns)

    vmtrace.advance_time(1)
    vmtrace.finish(run)
    recs = records(path)
    assert.equal(5, #recs)
    assert.equal("end", recs[5].type)
    assert.equal(run, recs[5].span.span_id)
    assert.equal(9, recs[5].span.duration_ms)
    -- every line is complete: the file ends with a newline
    assert.equal("\n", read(path):sub(-1))
  end)

  it("has every finished span with its metadata, events and links, as the JSON export writes it",
    function()
      local path = tmp()
      assert.is_true(vmtrace.stream(path))
      local run = vmtrace.start("pipeline", "run")
      vmtrace.set_metadata(run, "big", math.maxinteger)
      vmtrace.set_metadata(run, "nested", { list = { 1, "two", true }, none = vmtrace.null })
      local call = vmtrace.start("llm_call", "plan")
      vmtrace.llm_usage(call, { model = "m1", provider = "p1", input_tokens = 120,
        output_tokens = 30, cost_usd = 0.5 })
      vmtrace.advance_time(2)
      vmtrace.record_event(call, "first_token", { n = 1 })
      vmtrace.advance_time(2)
      local link = vmtrace.span_link(call) -- a link is taken while the span is open
      vmtrace.finish(call)
      local tool = vmtrace.start("tool_call", "grep", {
        links = { link, { trace_id = "trace_other", span_id = 77,
          attributes = { why = "retry" } } },
      })
      vmtrace.finish(tool)
      local det = vmtrace.start("fn_call", "detached", { detached = true })
      vmtrace.finish(det)
      vmtrace.marker("model_route", "route", { from_model = "a", to_model = "b" })
      vmtrace.finish(run)

      local spans = vmtrace.spans()
      local ends = of_type(records(path), "end")
      assert.equal(#spans, #ends)
      local exported = export_lines()
      for i, s in ipairs(spans) do
        -- in finish order, each one the span as export("json") writes it
        assert.equal(s.span_id, ends[i].span.span_id)
        assert.equal(exported[s.span_id], span_text(ends[i].text))
      end
      -- and what a reader sees in it
      local by_id = {}
      for _, e in ipairs(ends) do by_id[e.span.span_id] = e.span end
      assert.equal("m1", by_id[call].metadata.model)
      assert.equal(120, by_id[call].metadata.input_tokens)
      assert.equal(4, by_id[call].duration_ms)
      assert.equal("first_token", by_id[call].events[1].name)
      assert.equal(2, by_id[call].events[1].offset_ms)
      assert.same({ n = 1 }, by_id[call].events[1].attributes)
      assert.equal(tostring(call), by_id[tool].links[1].span_id)
      assert.equal(vmtrace.trace_id(), by_id[tool].links[1].trace_id)
      assert.equal("77", by_id[tool].links[2].span_id)
      assert.same({ why = "retry" }, by_id[tool].links[2].attributes)
      assert.is_nil(by_id[det].parent_id)
      assert.same({ from_model = "a", to_model = "b" }, by_id[det + 1].metadata)
      assert.equal(0, by_id[det + 1].duration_ms)
      assert.matches('"big":9223372036854775807', span_text(ends[#ends].text), 1, true)
    end)

  it("has a start line for every open span and no end line for it", function()
    local path = tmp()
    assert.is_true(vmtrace.stream(path))
    local run = vmtrace.start("pipeline", "run")
    local step = vmtrace.start("step", "plan", { links = { { trace_id = "t", span_id = "9" } } })
    vmtrace.finish(vmtrace.start("tool_call", "ls"))

    local recs = records(path)
    local starts, ends = of_type(recs, "start"), of_type(recs, "end")
    assert.equal(3, #starts)
    assert.equal(1, #ends)
    assert.same({ run, step }, { starts[1].span.span_id, starts[2].span.span_id })
    assert.equal(run, starts[2].span.parent_id)
    assert.equal("9", starts[2].span.links[1].span_id)
    for _, e in ipairs(ends) do
      assert.is_not.equal(run, e.span.span_id)
      assert.is_not.equal(step, e.span.span_id)
    end
  end)

  it("writes metadata added to a completed span as a meta line with all its metadata", function()
    local path = tmp()
    assert.is_true(vmtrace.stream(path))
    local id = vmtrace.start("llm_call", "plan")
    vmtrace.set_metadata(id, "model", "m1")
    vmtrace.finish(id)
    local n = #lines(path)

    assert.is_true(vmtrace.set_metadata_if_absent(id, "late", 7))
    local recs = records(path)
    assert.equal(n + 1, #recs)
    assert.equal("meta", recs[#recs].type)
    assert.equal(id, recs[#recs].span_id)
    assert.same({ model = "m1", late = 7 }, recs[#recs].metadata)

    -- a key that is already there: nothing set, nothing written
    assert.is_false(vmtrace.set_metadata_if_absent(id, "late", 8))
    assert.equal(n + 1, #lines(path))
  end)

  it("writes a new header when the collector is reset, and the new trace's spans after it", function()
    local path = tmp()
    assert.is_true(vmtrace.stream(path))
    vmtrace.finish(vmtrace.start("pipeline", "first"))
    local first_trace = vmtrace.trace_id()

    vmtrace.reset()
    local second_trace = vmtrace.trace_id()
    assert.is_not.equal(first_trace, second_trace)
    local recs = records(path)
    assert.equal("trace", recs[#recs].type)
    assert.equal(second_trace, recs[#recs].trace_id)
    assert.is_not.equal(recs[1].otel_salt, recs[#recs].otel_salt)

    local id = vmtrace.start("pipeline", "second")
    assert.equal(1, id) -- ids restart
    recs = records(path)
    assert.equal(second_trace, recs[#recs].span.trace_id)

    vmtrace.enable() -- turning on (again) resets too
    recs = records(path)
    assert.equal("trace", recs[#recs].type)
    assert.equal(vmtrace.trace_id(), recs[#recs].trace_id)
    assert.equal(3, #of_type(recs, "trace"))
  end)

  it("stops with stream(nil): true, and later spans are not written", function()
    local path = tmp()
    assert.is_true(vmtrace.stream(path))
    vmtrace.finish(vmtrace.start("pipeline", "before"))
    assert.is_true(vmtrace.stream(nil))
    local text = read(path)

    local id = vmtrace.start("pipeline", "after")
    vmtrace.finish(id)
    vmtrace.reset()
    assert.equal(text, read(path))
    assert.is_nil(text:find("after", 1, true))
    assert.is_true(vmtrace.stream(nil)) -- no stream: still true
  end)

  it("streams to a Lua file handle, which may be closed right away", function()
    local path = tmp()
    local fh = assert(io.open(path, "w"))
    fh:write("# written by the handle first\n")
    assert.is_true(vmtrace.stream(fh))
    fh:close() -- the stream has its own descriptor
    local id = vmtrace.start("tool_call", "grep")
    vmtrace.finish(id)
    assert.is_true(vmtrace.stream(nil))

    local ls = lines(path)
    assert.equal("# written by the handle first", ls[1])
    assert.equal("trace", decode(ls[2]).type)
    assert.equal("start", decode(ls[3]).type)
    assert.equal("end", decode(ls[4]).type)
    assert.equal("grep", decode(ls[4]).span.name)
    assert.equal(4, #ls)
  end)

  it("with a second stream, the first one stops", function()
    local a, b = tmp(), tmp()
    assert.is_true(vmtrace.stream(a))
    vmtrace.finish(vmtrace.start("pipeline", "one"))
    assert.is_true(vmtrace.stream(b))
    vmtrace.finish(vmtrace.start("pipeline", "two"))
    assert.is_nil(read(a):find('"two"', 1, true))
    local recs = records(b)
    assert.equal("trace", recs[1].type)
    assert.equal("two", recs[#recs].span.name)
  end)

  it("appends to the file with opts.append and replaces it otherwise", function()
    local path = tmp()
    write(path, "# earlier\n")
    assert.is_true(vmtrace.stream(path, { append = true }))
    vmtrace.finish(vmtrace.start("pipeline", "run"))
    vmtrace.stream(nil)
    local ls = lines(path)
    assert.equal("# earlier", ls[1])
    assert.equal("trace", decode(ls[2]).type)

    assert.is_true(vmtrace.stream(path))
    vmtrace.stream(nil)
    ls = lines(path)
    assert.equal(1, #ls)
    assert.equal("trace", decode(ls[1]).type)
  end)

  it("with flush = false has every line in the file once stopped", function()
    local path = tmp()
    assert.is_true(vmtrace.stream(path, { flush = false }))
    for i = 1, 100 do vmtrace.finish(vmtrace.start("fn_call", "f" .. i)) end
    assert.is_true(vmtrace.stream(nil))
    local recs = records(path)
    assert.equal(201, #recs)
    assert.equal("f100", recs[201].span.name)
  end)

  it("reports a failed write when stopped (/dev/full) and goes on tracing", function()
    local f = io.open("/dev/full", "w")
    if not f then return pending("no /dev/full") end
    f:close()
    assert.is_true(vmtrace.stream("/dev/full"))
    local id = vmtrace.start("pipeline", "run")
    assert.is_number(vmtrace.finish(id))
    assert.equal(1, #vmtrace.spans())
    local ok, err = vmtrace.stream(nil)
    assert.is_nil(ok)
    assert.is_string(err)
    assert.matches("vmtrace.stream", err, 1, true)
    assert.matches("No space left on device", err, 1, true)
    assert.is_true(vmtrace.stream(nil)) -- reported once; no stream any more
  end)

  it("returns nil and a message naming the file when it cannot be opened", function()
    local ok, err = vmtrace.stream("/nonexistent-dir/trace.ndjson")
    assert.is_nil(ok)
    assert.matches("/nonexistent-dir/trace.ndjson", err, 1, true)
    assert.matches("No such file or directory", err, 1, true)
    -- nothing streams now
    assert.is_true(vmtrace.stream(nil))
  end)

  it("raises on a bad destination or option", function()
    assert.has_error(function() vmtrace.stream(42) end)
    assert.has_error(function() vmtrace.stream(tmp(), { flush = "yes" }) end)
    assert.has_error(function() vmtrace.stream(tmp(), { append = 1 }) end)
    local fh = assert(io.open(tmp(), "w"))
    fh:close()
    assert.has_error(function() vmtrace.stream(fh) end)
  end)
end)

describe("vmtrace.load", function()
  local tmp = fixture()

  -- A run with everything a span can hold: 64-bit integers, NUL bytes,
  -- nested values, events, links (local and remote), a detached span, markers,
  -- coroutine tracks and late metadata.
  local function rich_run(extra_strings)
    local run = vmtrace.start("pipeline", "fix_failing_test")
    vmtrace.set_metadata(run, "max", math.maxinteger)
    vmtrace.set_metadata(run, "min", math.mininteger)
    vmtrace.set_metadata(run, "nul", "a\0b")
    vmtrace.set_metadata(run, "float", 0.1)
    vmtrace.set_metadata(run, "nested", { 1, "two", { k = vmtrace.null, t = true } })
    vmtrace.set_metadata(run, "empty", {})
    vmtrace.set_metadata(run, "unicode", "h\u{e9}llo \u{1F600}")
    if extra_strings then extra_strings(run) end
    vmtrace.advance_time(2)
    local step = vmtrace.start("step", "plan\0step")
    local call = vmtrace.start("llm_call", "ask")
    vmtrace.llm_usage(call, { model = "claude-sonnet-4", provider = "anthropic",
      input_tokens = 2400, output_tokens = 300, cost_usd = 0.0123 })
    vmtrace.advance_time(4)
    vmtrace.record_event(call, "first_token", { n = 1, big = math.maxinteger })
    vmtrace.record_event(call, "done")
    vmtrace.advance_time(3)
    local link = vmtrace.span_link(call)
    vmtrace.finish(call)
    local tool = vmtrace.start("tool_call", "grep", {
      links = { link,
        { trace_id = "trace_remote", span_id = 99, attributes = { why = "retry" } } },
    })
    vmtrace.advance_time(1)
    vmtrace.finish(tool)
    vmtrace.finish(step)
    local det = vmtrace.start("fn_call", "background", { detached = true })
    vmtrace.advance_time(2)
    vmtrace.finish(det)
    vmtrace.model_route("a", "b", "cheaper")
    vmtrace.tool_mount({ "grep", "ls" }, "builtin")
    local co = vmtrace.coroutine.wrap(function()
      local s = vmtrace.start("tool_call", "in_coroutine")
      coroutine.yield()
      vmtrace.advance_time(1)
      vmtrace.finish(s)
    end)
    co()
    local main = vmtrace.start("fn_call", "on_main")
    co()
    vmtrace.advance_time(1)
    vmtrace.finish(main)
    vmtrace.advance_time(1)
    vmtrace.finish(run)
    vmtrace.set_metadata_if_absent(call, "late", "after the end")
    return run
  end

  local function observable()
    return {
      spans = vmtrace.spans(),
      summary = vmtrace.summary(),
      otlp = vmtrace.export("otlp"),
      json = vmtrace.export("json"),
      chrome = vmtrace.export("chrome"),
      folded = vmtrace.export("folded", nil, { weight = "tokens" }),
      trace_id = vmtrace.trace_id(),
    }
  end

  describe("a JSON span file", function()
    it("comes back exactly: spans(), summary(), every export, the trace id", function()
      rich_run()
      local before = observable()
      local path = tmp()
      assert.is_true(vmtrace.export("json", path))

      vmtrace.reset()
      assert.equal(#before.spans, vmtrace.load(path))
      local after = observable()
      assert.same(before.spans, after.spans)
      assert.equal(before.summary, after.summary)
      assert.equal(before.otlp, after.otlp)
      assert.equal(before.json, after.json)
      assert.equal(before.chrome, after.chrome) -- coroutine tracks
      assert.equal(before.folded, after.folded)
      assert.equal(before.trace_id, after.trace_id)
      -- the values a reader checks first
      local root = after.spans[#after.spans]
      assert.equal(math.maxinteger, root.metadata.max)
      assert.equal("integer", math.type(root.metadata.max))
      assert.equal(math.mininteger, root.metadata.min)
      assert.equal("a\0b", root.metadata.nul)
    end)

    it("turns invalid UTF-8 into U+FFFD, as every export does, and keeps the rest", function()
      -- The exports write valid UTF-8 whatever bytes a string holds, so a span
      -- file cannot carry invalid bytes: they come back as U+FFFD.
      rich_run(function(run)
        vmtrace.set_metadata(run, "bad", "x\xff\xfey")
        vmtrace.finish(vmtrace.start("fn_call", "cut\xc3"))
      end)
      local before = observable()
      local path = tmp()
      assert.is_true(vmtrace.export("json", path))

      vmtrace.reset()
      assert.equal(#before.spans, vmtrace.load(path))
      local after = observable()
      assert.equal(before.otlp, after.otlp)
      assert.equal(before.json, after.json)
      assert.equal(before.chrome, after.chrome)
      local expected = before.spans
      for _, s in ipairs(expected) do
        s.name = fffd(s.name)
        if s.metadata and s.metadata.bad then s.metadata.bad = fffd(s.metadata.bad) end
      end
      assert.same(expected, after.spans)
      local root = after.spans[#after.spans]
      assert.equal("x\u{FFFD}\u{FFFD}y", root.metadata.bad)
    end)

    it("replaces the spans the collector had", function()
      vmtrace.finish(vmtrace.start("pipeline", "kept in the file"))
      local path = tmp()
      assert.is_true(vmtrace.export("json", path))
      vmtrace.reset()
      vmtrace.finish(vmtrace.start("pipeline", "a"))
      vmtrace.finish(vmtrace.start("pipeline", "b"))
      assert.equal(1, vmtrace.load(path))
      local spans = vmtrace.spans()
      assert.equal(1, #spans)
      assert.equal("kept in the file", spans[1].name)
    end)
  end)

  describe("an NDJSON stream", function()
    it("of a whole run gives what the live collector had", function()
      local path = tmp()
      assert.is_true(vmtrace.stream(path))
      rich_run()
      local live = observable()
      assert.is_true(vmtrace.stream(nil))

      vmtrace.reset()
      assert.equal(#live.spans, vmtrace.load(path))
      local loaded = observable()
      assert.equal(live.summary, loaded.summary)
      assert.same(live.spans, loaded.spans) -- late metadata included
      assert.equal(live.otlp, loaded.otlp) -- same trace and span ids
      assert.equal(live.json, loaded.json)
      assert.equal(live.chrome, loaded.chrome)
      assert.equal(live.trace_id, loaded.trace_id)
    end)

    it("read while the stream is still on has the spans finished so far", function()
      local path = tmp()
      assert.is_true(vmtrace.stream(path))
      local run = vmtrace.start("pipeline", "run")
      vmtrace.advance_time(2)
      local a = vmtrace.start("llm_call", "a")
      vmtrace.set_metadata(a, "i", 1)
      vmtrace.advance_time(3)
      vmtrace.finish(a)
      local copy = tmp()
      write(copy, read(path)) -- what a crash now would leave
      vmtrace.finish(run)
      vmtrace.stream(nil)

      assert.equal(2, vmtrace.load(copy))
      local spans = vmtrace.spans()
      assert.equal("a", spans[1].name)
      assert.same({ i = 1 }, spans[1].metadata)
      assert.equal(3, spans[1].duration_ms)
      assert.equal("run", spans[2].name)
      assert.same({ unfinished = true }, spans[2].metadata)
    end)

    it("with a reset in it gives the spans of the last trace, as the live collector had", function()
      local path = tmp()
      assert.is_true(vmtrace.stream(path))
      vmtrace.finish(vmtrace.start("pipeline", "first trace"))
      vmtrace.reset()
      local id = vmtrace.start("pipeline", "second trace")
      vmtrace.advance_time(4)
      vmtrace.finish(id)
      local live = observable()
      vmtrace.stream(nil)

      vmtrace.reset()
      local n, info = vmtrace.load(path)
      assert.same({ unfinished = 0, skipped_lines = 0, renumbered = false }, info)
      assert.equal(1, n)
      assert.equal(live.summary, vmtrace.summary())
      assert.equal(live.trace_id, vmtrace.trace_id())
    end)

    -- A stream as a crash leaves it: written by hand with known times.
    local HEADER = '{"type":"trace","trace_id":"trace_0190d6a4-7c55-7b38-8e8a-3f1c2d4e5f60",'
      .. '"otel_salt":"0123456789abcdef","version":"0.1.0","start_unix_ns":1700000000000000000}'
    local function span_json(id, parent, kind, name, start_ms, dur_ms, extra)
      local s = ('{"trace_id":"trace_0190d6a4-7c55-7b38-8e8a-3f1c2d4e5f60","span_id":%d'):format(id)
      if parent then s = s .. (',"parent_id":%d'):format(parent) end
      s = s .. (',"kind":"%s","name":"%s","start_ms":%d,"start_unix_ms":%d'):format(
        kind, name, start_ms, WALL + start_ms)
      if dur_ms then s = s .. (',"duration_ms":%d'):format(dur_ms) end
      s = s .. (',"start_ns":%d,"start_unix_ns":%d'):format(start_ms * NS, (WALL + start_ms) * NS)
      if dur_ms then s = s .. (',"duration_ns":%d'):format(dur_ms * NS) end
      s = s .. ',"track":0'
      return s .. (extra or "") .. "}"
    end
    local function start_line(...) return '{"type":"start","span":' .. span_json(...) .. "}" end
    local function end_line(...) return '{"type":"end","span":' .. span_json(...) .. "}" end

    local function cut_stream()
      local ls = {
        HEADER,
        start_line(1, nil, "pipeline", "run", 0),
        start_line(2, 1, "step", "plan", 10),
        start_line(3, 2, "llm_call", "ask", 12),
        end_line(3, 2, "llm_call", "ask", 12, 30, ',"metadata":{"model":"m1","input_tokens":5}'),
        start_line(4, 2, "tool_call", "grep", 45),
        end_line(4, 2, "tool_call", "grep", 45, 5, ',"metadata":{"i":4}'),
        '{"type":"meta","span_id":4,"metadata":{"i":4,"late":true}}',
        start_line(5, 2, "tool_call", "cat", 52),
      }
      local text = table.concat(ls, "\n") .. "\n"
      local last = end_line(5, 2, "tool_call", "cat", 52, 20)
      return text .. last:sub(1, 60) -- cut in the middle of the last line
    end

    it("cut off by a crash gives the finished spans and the open ones as unfinished", function()
      local path = tmp()
      write(path, cut_stream())
      assert.equal(5, vmtrace.load(path))
      local spans = vmtrace.spans()
      local names, by_name = {}, {}
      for i, s in ipairs(spans) do
        names[i] = s.name
        by_name[s.name] = s
      end
      -- the finished ones in finish order, then those still open
      assert.same({ "ask", "grep", "run", "plan", "cat" }, names)
      assert.same({ model = "m1", input_tokens = 5 }, by_name.ask.metadata)
      assert.equal(30, by_name.ask.duration_ms)
      assert.same({ i = 4, late = true }, by_name.grep.metadata)
      assert.is_nil(by_name.ask.metadata.unfinished)
      for _, name in ipairs { "run", "plan", "cat" } do
        assert.is_true(by_name[name].metadata.unfinished, name)
      end
      -- open spans end at the last time the stream saw (cat's start, 52 ms)
      assert.equal(52, by_name.run.duration_ms)
      assert.equal(42, by_name.plan.duration_ms)
      assert.equal(0, by_name.cat.duration_ms)
      assert.equal(WALL, by_name.run.start_unix_ms)
      assert.equal(1, by_name.plan.parent_id)
      assert.equal("trace_0190d6a4-7c55-7b38-8e8a-3f1c2d4e5f60", vmtrace.trace_id())
      assert.equal(table.concat({
        "Trace: 5 spans, 52ms total",
        "",
        "pipeline run 52ms (unfinished=true)",
        "  step plan 42ms (unfinished=true)",
        '    llm_call ask 30ms (input_tokens=5, model="m1")',
        "    tool_call grep 5ms (i=4, late=true)",
        "    tool_call cat 0ms (unfinished=true)",
      }, "\n"), vmtrace.summary())
    end)

    it("cut off right after a line (no partial line) loads the same way", function()
      local path = tmp()
      local text = cut_stream()
      write(path, text)
      assert.equal(5, vmtrace.load(path))
      local cut_mid_line = vmtrace.spans()
      write(path, text:sub(1, #text - 60))
      assert.equal(5, vmtrace.load(path))
      assert.same(cut_mid_line, vmtrace.spans())
    end)

    it("ends unfinished spans at the last span time, also when written under a mock clock",
      function()
        local path = tmp()
        assert.is_true(vmtrace.stream(path))
        vmtrace.start("pipeline", "run")
        vmtrace.advance_time(5)
        vmtrace.start("step", "plan")
        vmtrace.advance_time(3)
        vmtrace.finish(vmtrace.start("llm_call", "a"))
        vmtrace.advance_time(2)
        vmtrace.finish(vmtrace.start("llm_call", "b")) -- starts and ends at WALL + 10
        local crashed = tmp()
        write(crashed, read(path))
        vmtrace.stream(nil)

        assert.equal(4, vmtrace.load(crashed))
        local by_name = {}
        for _, s in ipairs(vmtrace.spans()) do by_name[s.name] = s end
        assert.is_true(by_name.run.metadata.unfinished)
        assert.equal(10, by_name.run.duration_ms)
        assert.equal(5, by_name.plan.duration_ms)
      end)
  end)

  describe("errors", function()
    local function assert_load_error(path, pattern)
      local n, err = vmtrace.load(path)
      assert.is_nil(n)
      assert.is_string(err)
      assert.equal(path .. ": ", err:sub(1, #path + 2))
      assert.matches(pattern, err)
      return err
    end

    local function good_stream()
      local path = tmp()
      assert.is_true(vmtrace.stream(path))
      local run = vmtrace.start("pipeline", "run")
      vmtrace.finish(vmtrace.start("tool_call", "a"))
      vmtrace.finish(vmtrace.start("tool_call", "b"))
      vmtrace.finish(run)
      vmtrace.stream(nil)
      return lines(path) -- header, start 1, start 2, end 2, start 3, end 3, end 1
    end

    local function good_json()
      local run = vmtrace.start("pipeline", "run")
      vmtrace.finish(vmtrace.start("tool_call", "a"))
      vmtrace.finish(vmtrace.start("tool_call", "b"))
      vmtrace.finish(run)
      local ls = {}
      for l in vmtrace.export("json"):gmatch("[^\n]+") do ls[#ls + 1] = l end
      return ls -- "[", span a, span b, span run, "]"
    end

    -- A stream may hold torn or corrupt lines (a crash mid-line, a full disk,
    -- an append after a torn line): each one is skipped and counted, and
    -- everything else is kept.
    local function assert_skips(ls, skipped, nspans)
      local path = tmp()
      write(path, table.concat(ls, "\n") .. "\n")
      local n, info = vmtrace.load(path)
      assert.is_table(info, tostring(info))
      assert.equal(skipped, info.skipped_lines)
      assert.equal(nspans, n)
      return helper.by_id(vmtrace.spans())
    end

    it("skips and counts a torn line in the middle of a stream, and keeps the rest", function()
      local ls = good_stream()
      ls[4] = '{"type":"end","span":{"span_id":2,' -- span 2's end line, torn
      local by = assert_skips(ls, 1, 3)
      assert.is_true(by[2].metadata.unfinished, "span 2 never ended in the file")
      assert.is_nil(by[3].metadata)
      assert.is_nil(by[1].metadata)
    end)

    it("skips and counts a line that is not a record", function()
      local ls = good_stream()
      table.insert(ls, 3, "[1,2]")
      table.insert(ls, 5, "\255\254 not JSON")
      local by = assert_skips(ls, 2, 3)
      for id = 1, 3 do assert.is_nil(by[id].metadata, "span " .. id) end
    end)

    it("skips and counts a line of an unknown type", function()
      local ls = good_stream()
      table.insert(ls, 2, '{"type":"bogus"}')
      assert_skips(ls, 1, 3)
    end)

    it("a stream with no line it understands is refused, naming line 1", function()
      local path = tmp()
      write(path, '{"type":"bogus"}\n[1,2]\n')
      assert_load_error(path, ": line 1: not a JSON span list nor an NDJSON stream")
    end)

    it("names the line of bad JSON in a span file", function()
      local ls = good_json()
      ls[3] = ls[3]:gsub('"name":"b"', '"name":b"')
      local path = tmp()
      write(path, table.concat(ls, "\n") .. "\n")
      assert_load_error(path, ": line 3: ")
    end)

    it("names the line of a span file cut short", function()
      local ls = good_json()
      local path = tmp()
      write(path, table.concat(ls, "\n", 1, 3) .. "\n" .. ls[4]:sub(1, 40))
      assert_load_error(path, ": line 4: ")
    end)

    it("skips a span of an unknown kind in a stream, and names its line in a span file", function()
      local ls = good_stream()
      ls[6] = ls[6]:gsub('"kind":"tool_call"', '"kind":"tool_cal"') -- span 3's end
      local by = assert_skips(ls, 1, 3)
      assert.is_true(by[3].metadata.unfinished)

      local path = tmp()
      vmtrace.enable() -- a new trace: ids from 1 again
      ls = good_json()
      ls[3] = ls[3]:gsub('"kind":"tool_call"', '"kind":"no_such_kind"')
      write(path, table.concat(ls, "\n") .. "\n")
      assert_load_error(path, ": line 3: unknown span kind 'no_such_kind'")
    end)

    it("names the line where the bad span begins in a span file laid out differently", function()
      local ls = good_json()
      ls[3] = ls[3]:gsub('"kind":"tool_call"', '"kind":"no_such_kind"')
      -- "[" on line 1, then every field of every span on a line of its own
      local text = table.concat(ls, "\n"):gsub(',"', ',\n"')
      local path = tmp()
      write(path, text .. "\n")
      -- a problem in a span is reported at the line where that span begins
      local line, span_start
      local n = 1
      for l in (text .. "\n"):gmatch("([^\n]*)\n") do
        if l:find("^,?{") then span_start = n end
        if l:find("no_such_kind", 1, true) then line = span_start end
        n = n + 1
      end
      assert.is_true(line > 3)
      assert_load_error(path, ": line " .. line .. ": unknown span kind 'no_such_kind'")
    end)

    it("skips a span that ends twice in a stream, and names the line in a span file", function()
      local ls = good_stream()
      ls[#ls + 1] = ls[4] -- span 2 ends a second time
      assert_skips(ls, 1, 3)
      local path = tmp()
      vmtrace.enable() -- a new trace: ids from 1 again

      ls = good_json()
      ls[3] = ls[3]:gsub('"span_id":3', '"span_id":2')
      write(path, table.concat(ls, "\n") .. "\n")
      assert_load_error(path, ": line 3: span 2 appears twice")
    end)

    it("says so for an empty file", function()
      local path = tmp()
      write(path, "")
      assert_load_error(path, ": line 1: empty input")
      write(path, "\n  \n")
      assert_load_error(path, "empty input")
    end)

    it("names a missing file", function()
      local path = tmp()
      os.remove(path)
      local err = assert_load_error(path, "No such file or directory")
      assert.equal(path .. ": No such file or directory", err)
    end)

    it("raises on a path that is not a string", function()
      assert.has_error(function() vmtrace.load(nil) end)
      assert.has_error(function() vmtrace.load({}) end)
    end)
  end)
end)

describe("a streaming process killed with SIGKILL", function()
  local files, pid, pidfile
  local N = 50

  local function tmp()
    local p = os.tmpname()
    files[#files + 1] = p
    return p
  end

  -- SIGKILL the child: the pid it wrote itself and the one the shell saw.
  local function kill_child()
    local pids = { pid }
    if pidfile then
      local f = io.open(pidfile)
      if f then
        pids[#pids + 1] = f:read("n")
        f:close()
      end
    end
    for _, p in pairs(pids) do
      p = math.tointeger(p)
      if p and p > 0 then os.execute("kill -9 " .. p .. " 2>/dev/null") end
    end
    pid, pidfile = nil, nil
  end

  before_each(function() files = {} end)

  after_each(function()
    kill_child() -- never leave the child running, whatever failed
    for _, p in ipairs(files) do os.remove(p) end
  end)

  local CHILD = [[
local vmtrace = require "vmtrace"
local path, marker, n = arg[1], arg[2], tonumber(arg[3])
vmtrace.enable()
assert(vmtrace.stream(path))
local run = vmtrace.start("pipeline", "crash_run")
local step = vmtrace.start("step", "work")
for i = 1, n do
  local id = vmtrace.start("tool_call", "call_" .. i)
  vmtrace.set_metadata(id, "i", i)
  vmtrace.finish(id)
end
-- ready: our pid into the marker (written whole, then renamed)
local stat = io.open("/proc/self/stat")
local mypid = stat and stat:read("n") or 0
if stat then stat:close() end
local f = assert(io.open(marker .. ".tmp", "w"))
f:write(mypid, "\n")
f:close()
assert(os.rename(marker .. ".tmp", marker))
local deadline = os.time() + 60 -- in case nobody kills us
while os.time() < deadline do end
]]

  local function run(cmd, errfile)
    local p = io.popen(cmd .. " 2>" .. errfile)
    local out = p:read("a")
    local _, how, code = p:close()
    return out, how, code, read(errfile)
  end

  it("leaves a stream the command reads back: finished spans and the open ones unfinished",
    function()
      local script, path, marker, out, err = tmp(), tmp(), tmp(), tmp(), tmp()
      pidfile = tmp()
      os.remove(marker)
      os.remove(out)
      files[#files + 1] = marker .. ".tmp"
      write(script, CHILD)
      local env = ("LUA_PATH=%s LUA_CPATH=%s"):format(
        q(ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;"), q(ROOT .. "/build/?.so;;"))
      assert.is_true(os.execute(("%s lua5.4 %s %s %s %d >/dev/null 2>%s & echo $! > %s"):format(
        env, q(script), q(path), q(marker), N, q(err), q(pidfile))))

      local ready
      for _ = 1, 600 do -- at most ~30 s
        local f = io.open(marker)
        if f then
          ready = f:read("n")
          f:close()
          if ready then break end
        end
        os.execute("sleep 0.05")
      end
      assert.is_truthy(ready, "the child never got ready; its stderr: " .. read(err))
      pid = ready
      kill_child()

      -- the command reads the stream of the killed process
      local text, how, code, stderr = run(("%s/bin/vmtrace summary %s"):format(q(ROOT), q(path)),
        tmp())
      assert.equal("", stderr)
      assert.equal("exit", how)
      assert.equal(0, code)
      local ls = {}
      for l in text:gmatch("([^\n]*)\n") do ls[#ls + 1] = l end
      assert.matches("^Trace: " .. (N + 2) .. " spans, %d+ms total$", ls[1])
      assert.equal("", ls[2])
      assert.matches("^pipeline crash_run %d+ms %(unfinished=true%)$", ls[3])
      assert.matches("^  step work %d+ms %(unfinished=true%)$", ls[4])
      for i = 1, N do
        assert.matches("^    tool_call call_" .. i .. " %d+ms %(i=" .. i .. "%)$", ls[4 + i])
      end
      assert.equal(N + 4, #ls)

      local _, how2, code2, stderr2 = run(("%s/bin/vmtrace convert %s --to json -o %s"):format(
        q(ROOT), q(path), q(out)), tmp())
      assert.equal("", stderr2)
      assert.equal("exit", how2)
      assert.equal(0, code2)
      local json = read(out)
      local spans = assert(vmtrace.json_decode(json))
      assert.equal(N + 2, #spans)
      local seen, last_end, open_end = {}, 0, {}
      for _, s in ipairs(spans) do
        if s.kind == "tool_call" then
          local i = math.tointeger(s.metadata.i)
          assert.equal("call_" .. i, s.name)
          assert.is_nil(s.metadata.unfinished)
          seen[i] = true
        else
          assert.same({ unfinished = true }, s.metadata)
        end
      end
      for i = 1, N do assert.is_true(seen[i], "span " .. i) end
      local by_name = {}
      for _, s in ipairs(spans) do by_name[s.name] = s end
      assert.equal("pipeline", by_name.crash_run.kind)
      assert.equal("step", by_name.work.kind)
      assert.equal(by_name.crash_run.span_id, by_name.work.parent_id)
      assert.equal(by_name.work.span_id, by_name.call_1.parent_id)
      -- the open ones end at the last time the stream saw: the last call's end
      for l in json:gmatch("[^\n]+") do
        local st = math.tointeger(tonumber(l:match('"start_unix_ns":(%d+)')))
        local du = math.tointeger(tonumber(l:match('"duration_ns":(%d+)')))
        if st then
          if l:find('"unfinished":true', 1, true) then
            open_end[#open_end + 1] = st + du
          elseif st + du > last_end then
            last_end = st + du
          end
        end
      end
      assert.same({ last_end, last_end }, open_end)
    end)
end)
