-- Bad input (issue 5): a table of cases, one row each.
--
-- Every row runs on the same recorded state (`record_fixture` below: tracing
-- on, completed spans with metadata, events and links, two open spans, a
-- timing handle and a scoped handle), takes a snapshot of what a user can
-- read (vmtrace.spans(), get() of every open span, the current span, the
-- settings, the dropped count, the trace id), runs the case, and checks:
--
--   1. the answer the row expects:
--        expect = "error"   raises `vmtrace.<fn>: bad argument #<arg> (...)`
--                           containing every string in `words`
--        expect = "raises"  an error that is not a bad argument (the user's
--                           own error coming back, a documented error)
--                           containing every string in `words`
--        expect = "fails"   returns nil and a message containing `words`
--                           (an I/O failure: export, stream, load)
--        expect = "noop"    the documented no-op answer `returns` ("nil",
--                           "false" or "0") and records nothing
--        expect = "ok"      accepted; `run` asserts what it reads back
--      then `check(ids, ctx, answer)` when the row has one;
--   2. that everything recorded before is intact: the snapshot equals the
--      state now, but for the `adds` completed spans the case itself
--      legitimately added (default 0). A row that resets or evicts on
--      purpose asserts its own outcome and takes a new snapshot
--      (ctx.new_trace / ctx.resnap), which is then checked the same way;
--   3. that the collector still works: a new span is started, given
--      metadata and an event, finished, and read back under the right parent.
--
-- The rows "<fn> #<n> given <a value>" are generated from SIGNATURES (every
-- public function's arguments and what each accepts); the others are
-- written out in CASES. No row asserts a duration.

local vmtrace = require "vmtrace"
local timing = require "vmtrace.timing"
local helper = require "spec.helper"

local null = vmtrace.null
local unpack = table.unpack

------------------------------------------------------------------------------
-- helpers
------------------------------------------------------------------------------

local function pack(...) return { n = select("#", ...), ... } end

local shq = helper.shq

local read_file = helper.read

local write_file = helper.write

local function ls(dir)
  local p = assert(io.popen("ls -A " .. shq(dir) .. " 2>/dev/null"))
  local names = {}
  for name in p:read("a"):gmatch("[^\n]+") do names[#names + 1] = name end
  p:close()
  table.sort(names)
  return names
end

local TMP -- a directory for the whole file (made in lazy_setup)
local tmp_n = 0
local function tmp_path(name)
  tmp_n = tmp_n + 1
  return ("%s/%d-%s"):format(TMP, tmp_n, name)
end

local MISSING_DIR = "/nonexistent-vmtrace-dir-15"

-- Strict UTF-8 (Lua 5.4's utf8.len refuses overlongs, surrogates and
-- anything past U+10FFFF).
local function assert_utf8(s, what)
  local n, at = utf8.len(s)
  assert.is_truthy(n, ("%s is not valid UTF-8 at byte %s"):format(what, tostring(at)))
end

local FORMATS = { "json", "otlp", "chrome", "folded", "profile" }

-- Every export of the current trace is valid UTF-8 (and the JSON ones parse).
local function assert_exports_utf8()
  for _, f in ipairs(FORMATS) do
    local text = vmtrace.export(f)
    assert.is_string(text, f .. " export")
    assert_utf8(text, "the " .. f .. " export")
    if f == "json" or f == "otlp" or f == "chrome" then
      assert.is_not_nil(vmtrace.json_decode(text), "the " .. f .. " export parses")
    end
  end
end

local function last_span()
  local all = vmtrace.spans()
  return all[#all]
end

local function count_keys(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- Bytes no UTF-8 decoder accepts, and a NUL: 0xFF, 0xFE, an overlong NUL,
-- a surrogate, a code point past U+10FFFF, a lone continuation byte.
local JUNK = "n\0u\255l\254\xC0\x80l\xED\xA0\x80\xF4\x90\x80\x80\x80end"

-- A table nested `depth` tables deep: {{{ ... {"bottom"} ... }}}.
local function nested(depth)
  local t = { "bottom" }
  for _ = 2, depth do t = { t } end
  return t
end

local function cyclic()
  local t = { a = { b = {} } }
  t.a.b = t
  return t
end

-- The message lists all 21 kinds, in the seed's order.
local function lists_every_kind(_, _, err)
  assert.is_truthy(err:find("expected one of " .. table.concat(helper.KINDS, ", "), 1, true),
    "the message should list every kind in order: " .. err)
end

------------------------------------------------------------------------------
-- the recorded state every row starts from
------------------------------------------------------------------------------

-- ids: root (open pipeline), llm (completed llm_call with metadata, an event
-- and a link), tool (completed tool_call), open (open step with metadata and
-- an event), timing (a vmtrace.timing handle, open), scoped (a Span handle,
-- open, the current span).
local function record_fixture()
  vmtrace.enable() -- resets: ids start at 1
  local ids = {}
  ids.root = vmtrace.start("pipeline", "fixture run")
  ids.llm = vmtrace.start("llm_call", "plan", {
    links = { { trace_id = "trace_remote", span_id = "7", attributes = { peer = "a" } } },
  })
  vmtrace.set_metadata(ids.llm, "model", "claude-sonnet-4")
  vmtrace.set_metadata(ids.llm, "input_tokens", 2400)
  vmtrace.set_metadata(ids.llm, "nested", { list = { 1, "two", true }, f = 0.5 })
  vmtrace.record_event(ids.llm, "first_token", { chunk = 1 })
  vmtrace.finish(ids.llm)
  ids.tool = vmtrace.start("tool_call", "grep", { metadata = { pattern = "TODO" } })
  vmtrace.record_event(ids.tool, "matched")
  vmtrace.finish(ids.tool)
  ids.open = vmtrace.start("step", "open step")
  vmtrace.set_metadata(ids.open, "attempt", 1)
  vmtrace.record_event(ids.open, "began", { n = 1 })
  ids.timing = timing.start("fixture timing", { files = 3 })
  ids.scoped = vmtrace.span("fn_call", "scoped")
  ids.scoped:set("k", "v")
  ids.scoped:event("checkpoint")
  -- the fixture is what the rows rely on: check it once here
  assert.same({ 1, 2, 3, 4, 5, 6 },
    { ids.root, ids.llm, ids.tool, ids.open, ids.timing.span_id, ids.scoped.id })
  assert.equal(ids.scoped.id, vmtrace.current_span_id())
  return ids
end

local function snapshot(open_ids)
  local snap = helper.snapshot(open_ids)
  snap.settings = vmtrace.configure()
  snap.dropped = vmtrace.dropped()
  snap.enabled = vmtrace.is_enabled()
  snap.trace_id = vmtrace.trace_id()
  return snap
end

-- The snapshot equals the state now, but for `adds` spans completed since.
local function assert_still_intact(snap, open_ids, adds)
  local now = vmtrace.spans()
  assert.equal(#snap.spans + adds, #now,
    ("the case should have added %d completed span(s)"):format(adds))
  local expected = {}
  for k, v in pairs(snap) do expected[k] = v end
  expected.spans = { unpack(snap.spans) }
  for i = #snap.spans + 1, #now do expected.spans[i] = now[i] end
  helper.assert_intact(expected, open_ids)
  assert.same(snap.settings, vmtrace.configure())
  assert.equal(snap.dropped, vmtrace.dropped())
  assert.equal(snap.enabled, vmtrace.is_enabled())
  assert.equal(snap.trace_id, vmtrace.trace_id())
end

-- A new span can be started and finished, under the current span.
local function assert_collector_works()
  if not vmtrace.is_enabled() then vmtrace.enable() end
  local parent = vmtrace.current_span_id()
  local before = #vmtrace.spans()
  local id = vmtrace.start("step", "works after")
  assert.is_true(id > 0)
  assert.is_true(vmtrace.set_metadata(id, "ok", true))
  assert.is_true(vmtrace.record_event(id, "still"))
  assert.is_number(vmtrace.finish(id))
  local s = vmtrace.get(id)
  assert.same({ "step", "works after", parent, true, "still" },
    { s.kind, s.name, s.parent_id, s.metadata.ok, s.events[1].name })
  assert.is_nil(s.open)
  assert.equal(before + 1, #vmtrace.spans())
  assert.equal(id, last_span().span_id)
  assert.same({ parent }, { vmtrace.current_span_id() })
end

-- Mount a 32 KiB tmpfs (root only); its directory, or nil.
local function mount_tmpfs(ctx)
  local dir = tmp_path("tmpfs")
  assert(os.execute("mkdir -p " .. shq(dir)))
  if not os.execute(("mount -t tmpfs -o size=32k tmpfs %s 2>/dev/null"):format(shq(dir))) then
    os.remove(dir)
    return nil
  end
  ctx.cleanup(function()
    os.execute("umount " .. shq(dir) .. " 2>/dev/null")
    os.remove(dir)
  end)
  return dir
end

-- What a row gets besides the fixture ids.
local function new_ctx(ids)
  local ctx = { ids = ids, cleanups = {} }
  ctx.open_ids = { ids.root, ids.open, ids.timing.span_id, ids.scoped.id }
  function ctx.cleanup(fn) ctx.cleanups[#ctx.cleanups + 1] = fn end
  -- A new snapshot, for a row that changed the trace on purpose (and has
  -- asserted how).
  function ctx.resnap() ctx.snap = snapshot(ctx.open_ids) end
  -- reset(), then a new trace: n nested open spans (ids 1..n, each with
  -- metadata i = its id) and one completed span (id n + 1) under them.
  function ctx.new_trace(n)
    vmtrace.reset()
    local open = {}
    for i = 1, n do
      open[i] = vmtrace.start("step", "new " .. i)
      vmtrace.set_metadata(open[i], "i", i)
    end
    local done = vmtrace.start("fn_call", "new done")
    vmtrace.record_event(done, "e")
    vmtrace.finish(done)
    assert.same({ n, n + 1 }, { open[n] or 0, done })
    ctx.open_ids = open
    ctx.resnap()
    return open, done
  end
  -- disable(), keeping what was recorded (turning back on would reset)
  function ctx.disable()
    vmtrace.disable()
    ctx.resnap()
  end
  return ctx
end

local function cleanup(ctx)
  for i = #ctx.cleanups, 1, -1 do pcall(ctx.cleanups[i]) end
  pcall(vmtrace.configure, { max_spans = 0 })
  vmtrace.stream(nil)
  while vmtrace.unmock_time() do end
  vmtrace.pricing.defaults()
end

local NOOP = { -- (no value at all reads as nil too)
  ["nil"] = function(r) return r.n <= 1 and r[1] == nil end,
  ["false"] = function(r) return r.n == 1 and r[1] == false end,
  ["0"] = function(r) return r.n == 1 and r[1] == 0 end,
}

local function show(r)
  local parts = {}
  for i = 1, r.n do parts[i] = type(r[i]) == "string" and ("%q"):format(r[i]) or tostring(r[i]) end
  return "(" .. table.concat(parts, ", ") .. ")"
end

local function assert_has_words(text, words)
  for _, w in ipairs(words or {}) do
    assert.is_truthy(text:find(w, 1, true), ("%q should contain %q"):format(text, w))
  end
end

local function run_case(row)
  local ids = record_fixture()
  local ctx = new_ctx(ids)
  finally(function() cleanup(ctx) end)
  if row.needs == "tmpfs" then
    ctx.tmpfs = mount_tmpfs(ctx)
    if not ctx.tmpfs then
      return pending("cannot mount a 32 KiB tmpfs here (needs root or CAP_SYS_ADMIN); "
        .. "the /dev/full rows still cover a full device")
    end
  end
  ctx.resnap()
  local answer
  if row.expect == "error" then
    answer = helper.assert_bad_argument(function() return row.run(ids, ctx) end,
      row.fn, row.arg, unpack(row.words or {}))
  elseif row.expect == "raises" then
    local ok, err = pcall(row.run, ids, ctx)
    assert.is_false(ok, "expected an error")
    answer = err
    if row.words then
      assert.is_string(err)
      assert_has_words(err, row.words)
    end
  elseif row.expect == "fails" then
    local r = pack(row.run(ids, ctx))
    assert.is_true(r[1] == nil and type(r[2]) == "string",
      "expected nil and a message, got " .. show(r))
    assert_has_words(r[2], row.words)
    answer = r[2]
  elseif row.expect == "noop" then
    local r = pack(row.run(ids, ctx))
    assert.is_true(NOOP[row.returns](r),
      ("expected the no-op answer %s, got %s"):format(row.returns, show(r)))
    answer = r
  elseif row.expect == "ok" then
    answer = row.run(ids, ctx)
  else
    error("bad row: expect = " .. tostring(row.expect))
  end
  if row.check then row.check(ids, ctx, answer) end
  assert_still_intact(ctx.snap, ctx.open_ids, row.adds or 0)
  assert_collector_works()
end

------------------------------------------------------------------------------
-- every wrong argument type for every public function
------------------------------------------------------------------------------

-- Values given where an argument wants something else. userdata and
-- threads are tried where JSON values or handles are expected.
local BAD = {
  { t = "nil", label = "nil" },
  { t = "number", label = "a number", v = 42 },
  { t = "table", label = "a table", v = {} },
  { t = "function", label = "a function", v = function() end },
  { t = "boolean", label = "a boolean", v = true },
  { t = "string", label = "a string", v = "x" },
  { t = "userdata", label = "a userdata (io.stdout)", v = io.stdout, rare = true },
  { t = "thread", label = "a thread", v = coroutine.create(function() end), rare = true },
}

-- What each `takes` accepts among the BAD types. "integer" refuses 1.5 (its
-- number case), "json" any JSON value, "handle" only its own handles.
local ACCEPTS = {
  string = { string = true },
  ["string|nil"] = { string = true, ["nil"] = true },
  table = { table = true },
  ["table|nil"] = { table = true, ["nil"] = true },
  integer = {},
  json = { ["nil"] = true, number = true, table = true, boolean = true, string = true },
  ["function"] = { ["function"] = true },
  ["boolean|nil"] = { boolean = true, ["nil"] = true },
  number = { number = true },
  ["number|nil"] = { number = true, ["nil"] = true },
  dest = { string = true, ["nil"] = true, userdata = true },
  handle = {},
}

-- For each function: how to call it with the argument list a, and per
-- argument a valid value (`ok`; "@x" is the fixture's ids.x), what it
-- accepts (`takes`) and the words its error must contain (`says`, %s the
-- type given; `on[type]` overrides). A span kind must be a string (a
-- number is not taken as a kind's name); an integer argument's number case
-- is 1.5.
local ID = { takes = "integer", says = "integer expected, got %s",
             on = { number = "integer expected, got non-integral number" } }
local KIND = { ok = "step", takes = "string", says = "span kind string expected, got %s" }
local NAME = { ok = "a name", takes = "string", says = "string expected, got %s" }
local function id(field) return setmetatable({ ok = "@" .. field }, { __index = ID }) end
local function str(ok) return { ok = ok, takes = "string", says = "string expected, got %s" } end
local JSON = { ok = 1, takes = "json", says = "%s is not JSON-able" }
local ATTRS = { takes = "table|nil", says = "table with string keys expected, got %s" }
local SPAN = { ok = "@scoped", takes = "handle", says = "span handle expected, got %s" }
local TIMING = { ok = "@timing", takes = "handle",
                 says = "timing handle from vmtrace.timing.start expected, got %s",
                 on = { table = "timing handle from vmtrace.timing.start expected, got another table" } }
local TIMING_ATTRS = { takes = "table|nil", says = "table of attributes expected, got %s" }
local MS = { ok = 5, takes = "number", says = "number of milliseconds expected, got %s" }
local noop_fn = function() end

local SIGNATURES = {
  { fn = "start", call = function(_, a) return vmtrace.start(a[1], a[2], a[3]) end,
    args = { KIND, NAME, { takes = "table|nil", says = "options table expected, got %s" } } },
  { fn = "finish", call = function(_, a) return vmtrace.finish(a[1]) end, args = { id("open") } },
  { fn = "set_metadata", call = function(_, a) return vmtrace.set_metadata(a[1], a[2], a[3]) end,
    args = { id("open"), str("key"), JSON } },
  { fn = "set_metadata_if_absent",
    call = function(_, a) return vmtrace.set_metadata_if_absent(a[1], a[2], a[3]) end,
    args = { id("llm"), str("fresh"), JSON } },
  { fn = "record_event", call = function(_, a) return vmtrace.record_event(a[1], a[2], a[3]) end,
    args = { id("open"), str("ev"), ATTRS } },
  { fn = "get", call = function(_, a) return vmtrace.get(a[1]) end, args = { id("open") } },
  { fn = "span_link", call = function(_, a) return vmtrace.span_link(a[1]) end, args = { id("open") } },
  { fn = "span", call = function(_, a) return vmtrace.span(a[1], a[2], a[3]) end,
    args = { KIND, NAME, { takes = "table|nil", says = "options table expected, got %s" } } },
  { fn = "with", call = function(_, a) return vmtrace.with(a[1], a[2], a[3]) end,
    args = { KIND, NAME, { ok = noop_fn, takes = "function", says = "function expected, got %s" } } },
  { fn = "marker", call = function(_, a) return vmtrace.marker(a[1], a[2], a[3]) end,
    args = { KIND, NAME, { ok = { a = 1 }, takes = "table|nil", says = "table expected, got %s" } } },
  { fn = "model_route", call = function(_, a) return vmtrace.model_route(a[1], a[2], a[3]) end,
    args = { str("small"), str("large"), str("too hard") } },
  { fn = "tool_mount", call = function(_, a) return vmtrace.tool_mount(a[1], a[2], a[3]) end,
    args = { { ok = { "grep" }, takes = "table", says = "table expected, got %s" }, str("search"),
             { takes = "string|nil", says = "string expected, got %s" } } },
  { fn = "deferred_tool_load",
    call = function(_, a) return vmtrace.deferred_tool_load(a[1], a[2], a[3]) end,
    args = { str("grep"), str("find text"), { takes = "number|nil", says = "number expected, got %s" } } },
  { fn = "llm_usage", call = function(_, a) return vmtrace.llm_usage(a[1], a[2]) end,
    args = { id("open"),
             { ok = { model = "m", input_tokens = 1 }, takes = "table", says = "table expected, got %s" } } },
  { fn = "export", call = function(_, a) return vmtrace.export(a[1], a[2], a[3]) end,
    args = { { ok = "json", takes = "string", says = "format name expected, got %s" },
             { takes = "dest", says = "string expected, got %s" },
             { takes = "table|nil", says = "table expected, got %s" } } },
  { fn = "stream", call = function(_, a) return vmtrace.stream(a[1], a[2]) end,
    args = { { takes = "dest", says = "string expected, got %s" },
             { takes = "table|nil", says = "options table expected, got %s" } } },
  { fn = "load", call = function(_, a) return vmtrace.load(a[1]) end,
    args = { str(MISSING_DIR .. "/trace.json") } },
  { fn = "configure", call = function(_, a) return vmtrace.configure(a[1]) end,
    args = { { takes = "table|nil", says = "table of settings expected, got %s" } } },
  { fn = "mock_time", call = function(_, a) return vmtrace.mock_time(a[1]) end, args = { MS } },
  { fn = "advance_time", call = function(_, a) return vmtrace.advance_time(a[1]) end, args = { MS } },
  { fn = "enable", call = function(_, a) return vmtrace.enable(a[1]) end,
    args = { { takes = "boolean|nil", says = "boolean expected, got %s" } } },
  { fn = "add_sink", call = function(_, a) return vmtrace.add_sink(a[1]) end,
    args = { { ok = { on_end = noop_fn }, takes = "table", says = "table expected, got %s" } } },
  { fn = "timing.start", call = function(_, a) return timing.start(a[1], a[2]) end,
    args = { str("t"), TIMING_ATTRS } },
  { fn = "timing.event", call = function(_, a) return timing.event(a[1], a[2], a[3]) end,
    args = { TIMING, str("ev"), ATTRS } },
  { fn = "timing.finish", call = function(_, a) return timing.finish(a[1], a[2]) end,
    args = { TIMING, TIMING_ATTRS } },
  { fn = "timing.timed", call = function(_, a) return timing.timed(a[1], a[2], a[3]) end,
    args = { str("t"), { ok = {}, takes = "table|nil", says = "table of attributes expected, got %s" },
             { ok = noop_fn, takes = "function", says = "function expected, got %s" } } },
  { fn = "timing.elapsed_ms", call = function(_, a) return timing.elapsed_ms(a[1]) end, args = { TIMING } },
  { fn = "pricing.set", call = function(_, a) return vmtrace.pricing.set(a[1], a[2], a[3]) end,
    args = { str("acme"), str("m1"), { ok = { input = 1 }, takes = "table", says = "prices must be a table, got %s" } } },
  { fn = "pricing.load", call = function(_, a) return vmtrace.pricing.load(a[1]) end,
    args = { str(MISSING_DIR .. "/prices.json") } },
  { fn = "pricing.cost", call = function(_, a) return vmtrace.pricing.cost(a[1]) end,
    args = { { ok = { model = "m" }, takes = "table", says = "got %s" } } },
  { fn = "Span:set", call = function(ids, a) return ids.scoped.set(a[1], a[2], a[3]) end,
    args = { SPAN, str("key"), JSON } },
  { fn = "Span:event", call = function(ids, a) return ids.scoped.event(a[1], a[2], a[3]) end,
    args = { SPAN, str("ev"), ATTRS } },
  { fn = "Span:finish", call = function(ids, a) return ids.scoped.finish(a[1]) end, args = { SPAN } },
  { fn = "json_decode", call = function(_, a) return vmtrace.json_decode(a[1]) end, args = { str("{}") } },
  { fn = "coroutine.create", call = function(_, a) return vmtrace.coroutine.create(a[1]) end,
    args = { { ok = noop_fn, takes = "function", says = "function expected, got %s" } } },
  { fn = "coroutine.wrap", call = function(_, a) return vmtrace.coroutine.wrap(a[1]) end,
    args = { { ok = noop_fn, takes = "function", says = "function expected, got %s" } } },
}

local function resolve(v, ids)
  if type(v) == "string" and v:sub(1, 1) == "@" then return ids[v:sub(2)] end
  return v
end

local function type_rows()
  local rows = {}
  for _, sig in ipairs(SIGNATURES) do
    for i, arg in ipairs(sig.args) do
      local accepts = assert(ACCEPTS[arg.takes], arg.takes)
      local wants_rare = arg.takes == "json" or arg.takes == "handle"
      for _, b in ipairs(BAD) do
        if not accepts[b.t] and (wants_rare or not b.rare) then
          local value, label, tname = b.v, b.label, b.t
          if arg.takes == "integer" and b.t == "number" then
            value, label = 1.5, "a non-integral number (1.5)"
          end
          local says = (arg.on and arg.on[b.t]) or arg.says
          rows[#rows + 1] = {
            name = ("%s #%d given %s"):format(sig.fn, i, label),
            expect = "error", fn = sig.fn, arg = i,
            words = { (says:gsub("%%s", tname)) },
            run = function(ids)
              local a = {}
              for j = 1, #sig.args do a[j] = resolve(sig.args[j].ok, ids) end
              a[i] = value
              return sig.call(ids, a)
            end,
          }
        end
      end
    end
  end
  for _, b in ipairs(BAD) do -- remove_sink of anything that is not a sink
    if not b.rare then
      rows[#rows + 1] = {
        name = ("remove_sink #1 given %s (not a sink): false"):format(b.label),
        expect = "noop", returns = "false",
        run = function() return vmtrace.remove_sink(b.v) end,
      }
    end
  end
  return rows
end

------------------------------------------------------------------------------
-- the written-out cases
------------------------------------------------------------------------------

local CASES = {
  -- unknown kinds: the message lists the 21 kinds ------------------------
  { name = "start with an unknown kind 'fn'", expect = "error", fn = "start", arg = 1,
    words = { "unknown span kind 'fn'" }, check = lists_every_kind,
    run = function() return vmtrace.start("fn", "x") end },
  { name = "start with a kind in the wrong case 'Pipeline'", expect = "error", fn = "start", arg = 1,
    words = { "unknown span kind 'Pipeline'" }, check = lists_every_kind,
    run = function() return vmtrace.start("Pipeline", "x") end },
  { name = "start with an empty kind", expect = "error", fn = "start", arg = 1,
    words = { "unknown span kind ''" }, check = lists_every_kind,
    run = function() return vmtrace.start("", "x") end },
  { name = "start with an unknown kind while tracing is off", expect = "error", fn = "start", arg = 1,
    words = { "unknown span kind 'tool'" }, check = lists_every_kind,
    run = function(_, ctx) ctx.disable(); return vmtrace.start("tool", "x") end },
  { name = "span with an unknown kind", expect = "error", fn = "span", arg = 1,
    words = { "unknown span kind 'event'" }, check = lists_every_kind,
    run = function() return vmtrace.span("event", "x") end },
  { name = "with with an unknown kind (fn not called)", expect = "error", fn = "with", arg = 1,
    words = { "unknown span kind 'llm'" }, check = lists_every_kind,
    run = function() return vmtrace.with("llm", "x", function() error("must not run") end) end },
  { name = "marker with an unknown kind", expect = "error", fn = "marker", arg = 1,
    words = { "unknown span kind 'note'" }, check = lists_every_kind,
    run = function() return vmtrace.marker("note", "x", { a = 1 }) end },
  { name = "start with a kind holding a NUL ('step\\0x'): the message shows no valid kind as unknown",
    expect = "error", fn = "start", arg = 1, words = { "unknown span kind '" },
    check = function(ids, ctx, err)
      lists_every_kind(ids, ctx, err)
      local shown = err:match("unknown span kind '(.-)'; expected")
      for _, k in ipairs(helper.KINDS) do
        assert.is_true(shown ~= k, ("the message calls the valid kind '%s' unknown: %s"):format(k, err))
      end
    end,
    run = function() return vmtrace.start("step\0x", "x") end },

  -- unknown options and settings -------------------------------------------
  { name = "start with an unknown option", expect = "error", fn = "start", arg = 3,
    words = { "unknown option 'detach'", "links, detached, metadata" },
    run = function() return vmtrace.start("step", "x", { detach = true }) end },
  { name = "start with an option in the wrong case", expect = "error", fn = "start", arg = 3,
    words = { "unknown option 'Links'" },
    run = function() return vmtrace.start("step", "x", { Links = {} }) end },
  { name = "span with an unknown option", expect = "error", fn = "span", arg = 3,
    words = { "unknown option 'meta'", "links, detached, metadata" },
    run = function() return vmtrace.span("step", "x", { meta = {} }) end },
  { name = "start with opts.detached not a boolean", expect = "error", fn = "start", arg = 3,
    words = { "opts.detached must be a boolean, got string" },
    run = function() return vmtrace.start("step", "x", { detached = "yes" }) end },
  { name = "start with opts.links[1].span_id a float", expect = "error", fn = "start", arg = 3,
    words = { "opts.links[1].span_id must be a string or an integer" },
    run = function() return vmtrace.start("step", "x", { links = { { trace_id = "t", span_id = 1.5 } } }) end },
  { name = "start with link attributes that are not strings", expect = "error", fn = "start", arg = 3,
    words = { "opts.links[1].attributes must map strings to strings" },
    run = function()
      return vmtrace.start("step", "x", { links = { { trace_id = "t", span_id = 1, attributes = { n = 1 } } } })
    end },
  { name = "configure with an unknown setting", expect = "error", fn = "configure", arg = 1,
    words = { "unknown setting 'max_span'", "expected max_spans" },
    run = function() return vmtrace.configure({ max_span = 2 }) end },
  { name = "configure{max_spans = -1}", expect = "error", fn = "configure", arg = 1,
    words = { "max_spans must be an integer >= 0" },
    run = function() return vmtrace.configure({ max_spans = -1 }) end },
  { name = "configure{max_spans = 1.5}", expect = "error", fn = "configure", arg = 1,
    words = { "max_spans must be an integer >= 0" },
    run = function() return vmtrace.configure({ max_spans = 1.5 }) end },
  { name = "configure{max_spans = \"x\"}", expect = "error", fn = "configure", arg = 1,
    words = { "max_spans must be an integer >= 0" },
    run = function() return vmtrace.configure({ max_spans = "x" }) end },
  { name = "configure{max_spans = {}}", expect = "error", fn = "configure", arg = 1,
    words = { "max_spans must be an integer >= 0" },
    run = function() return vmtrace.configure({ max_spans = {} }) end },
  { name = "configure{max_spans = NaN}", expect = "error", fn = "configure", arg = 1,
    words = { "max_spans must be an integer >= 0" },
    run = function() return vmtrace.configure({ max_spans = 0 / 0 }) end },
  { name = "export to an unknown format", expect = "error", fn = "export", arg = 1,
    words = { "unknown format", "'xml'", "json, otlp, chrome, folded, profile" },
    run = function() return vmtrace.export("xml") end },
  { name = "export to a format in the wrong case", expect = "error", fn = "export", arg = 1,
    words = { "unknown format", "'JSON'" },
    run = function() return vmtrace.export("JSON", MISSING_DIR .. "/x.json") end },
  { name = "export with an unknown weight", expect = "error", fn = "export", arg = 3,
    words = { "unknown weight", "'mass'", "time, tokens, cost" },
    run = function() return vmtrace.export("folded", nil, { weight = "mass" }) end },
  { name = "export with a weight that is a number", expect = "error", fn = "export", arg = 3,
    words = { "unknown weight", "time, tokens, cost" },
    run = function() return vmtrace.export("folded", nil, { weight = 1 }) end },
  { name = "export with opts.service_name not a string", expect = "error", fn = "export", arg = 3,
    words = { "opts.service_name must be a string" },
    run = function() return vmtrace.export("otlp", nil, { service_name = 5 }) end },
  { name = "export with a function in opts.resource (json)", expect = "error", fn = "export", arg = 3,
    words = { "function is not JSON-able", "resource" },
    run = function() return vmtrace.export("json", nil, { resource = { a = print } }) end },
  { name = "export with opts.resource a string (otlp)", expect = "error", fn = "export", arg = 3,
    words = { "resource" },
    run = function() return vmtrace.export("otlp", nil, { resource = "service=x" }) end },
  { name = "export to a closed file handle", expect = "error", fn = "export", arg = 2,
    words = { "file handle is closed" },
    run = function()
      local f = assert(io.open(tmp_path("closed"), "w"))
      f:close()
      return vmtrace.export("json", f)
    end },
  { name = "stream to a closed file handle", expect = "error", fn = "stream", arg = 1,
    words = { "file handle is closed" },
    run = function()
      local f = assert(io.open(tmp_path("closed"), "w"))
      f:close()
      return vmtrace.stream(f)
    end },
  { name = "stream with opts.flush not a boolean", expect = "error", fn = "stream", arg = 2,
    words = { "opts.flush must be a boolean" },
    run = function() return vmtrace.stream(tmp_path("s.ndjson"), { flush = "no" }) end },

  -- other argument errors ---------------------------------------------------
  { name = "add_sink with neither on_start nor on_end", expect = "error", fn = "add_sink", arg = 1,
    words = { "sink needs on_start or on_end" },
    run = function() return vmtrace.add_sink({}) end },
  { name = "add_sink with on_end not a function", expect = "error", fn = "add_sink", arg = 1,
    words = { "sink.on_end must be a function, got string" },
    run = function() return vmtrace.add_sink({ on_end = "print" }) end },
  { name = "tool_mount with a name that is not a string", expect = "error", fn = "tool_mount", arg = 1,
    words = { "tool_names[2] must be a string, got number" },
    run = function() return vmtrace.tool_mount({ "grep", 2 }, "search") end },
  { name = "llm_usage with a token count that is a string", expect = "error", fn = "llm_usage", arg = 2,
    words = { "usage.input_tokens must be an integer" },
    run = function(ids) return vmtrace.llm_usage(ids.open, { input_tokens = "12" }) end },
  { name = "llm_usage with a fractional token count", expect = "error", fn = "llm_usage", arg = 2,
    words = { "usage.output_tokens must be an integer, got 1.5" },
    run = function(ids) return vmtrace.llm_usage(ids.open, { output_tokens = 1.5 }) end },
  { name = "llm_usage with cost_usd not a number", expect = "error", fn = "llm_usage", arg = 2,
    words = { "usage.cost_usd must be a number, got string" },
    run = function(ids) return vmtrace.llm_usage(ids.open, { cost_usd = "0.1" }) end },
  { name = "pricing.set with a negative price", expect = "error", fn = "pricing.set", arg = 3,
    words = { "input must be a non-negative number" },
    run = function() return vmtrace.pricing.set("acme", "m1", { input = -1 }) end },
  { name = "pricing.set with a NaN price", expect = "error", fn = "pricing.set", arg = 3,
    words = { "output must be a non-negative number" },
    run = function() return vmtrace.pricing.set("acme", "m1", { output = 0 / 0 }) end },
  { name = "mock_time(NaN)", expect = "error", fn = "mock_time", arg = 1,
    words = { "milliseconds out of range" },
    run = function() return vmtrace.mock_time(0 / 0) end },
  { name = "mock_time(inf)", expect = "error", fn = "mock_time", arg = 1,
    words = { "milliseconds out of range" },
    run = function() return vmtrace.mock_time(math.huge) end },
  { name = "advance_time(-1) under a mock clock", expect = "error", fn = "advance_time", arg = 1,
    words = { "milliseconds must be >= 0" },
    run = function() vmtrace.mock_time(1000); return vmtrace.advance_time(-1) end },
  { name = "advance_time without a mock clock", expect = "raises",
    words = { "vmtrace.advance_time", "no mock clock is active" },
    run = function() return vmtrace.advance_time(5) end },
  { name = "record_event with attributes that are an array", expect = "error", fn = "record_event", arg = 3,
    words = { "table with string keys expected, got an array" },
    run = function(ids) return vmtrace.record_event(ids.open, "ev", { 1, 2 }) end },
  { name = "set_metadata with a table mixing keys", expect = "error", fn = "set_metadata", arg = 3,
    words = { "table mixes string and integer keys" },
    run = function(ids) return vmtrace.set_metadata(ids.open, "attempt", { 1, x = 2 }) end },
  { name = "set_metadata with a sparse array", expect = "error", fn = "set_metadata", arg = 3,
    words = { "sparse array" },
    run = function(ids) return vmtrace.set_metadata(ids.open, "attempt", { [1] = 1, [3] = 3 }) end },

  -- invalid UTF-8 and NUL bytes: accepted, read back byte for byte ----------
  { name = "invalid UTF-8 and NUL in a span name", expect = "ok", adds = 1,
    run = function()
      local id = vmtrace.start("step", JUNK)
      assert.equal(JUNK, vmtrace.get(id).name)
      assert.is_number(vmtrace.finish(id))
      assert.equal(JUNK, last_span().name)
      assert_exports_utf8()
    end },
  { name = "invalid UTF-8 and NUL in a metadata key and value", expect = "ok", adds = 1,
    run = function()
      local id = vmtrace.start("step", "junk metadata")
      assert.is_true(vmtrace.set_metadata(id, JUNK, JUNK))
      assert.is_true(vmtrace.set_metadata(id, "nested", { JUNK, { [JUNK] = JUNK } }))
      assert.is_true(vmtrace.set_metadata_if_absent(id, JUNK .. "2", JUNK))
      assert.is_false(vmtrace.set_metadata_if_absent(id, JUNK, "other"))
      vmtrace.finish(id)
      local md = vmtrace.get(id).metadata
      assert.equal(JUNK, md[JUNK])
      assert.equal(JUNK, md[JUNK .. "2"])
      assert.same({ JUNK, { [JUNK] = JUNK } }, md.nested)
      assert_exports_utf8()
    end },
  { name = "invalid UTF-8 and NUL in an event name and its attributes", expect = "ok", adds = 1,
    run = function()
      local id = vmtrace.start("step", "junk event")
      assert.is_true(vmtrace.record_event(id, JUNK, { [JUNK] = JUNK }))
      vmtrace.finish(id)
      local ev = vmtrace.get(id).events[1]
      assert.equal(JUNK, ev.name)
      assert.same({ [JUNK] = JUNK }, ev.attributes)
      assert_exports_utf8()
    end },
  { name = "invalid UTF-8 and NUL in a link's ids and attributes", expect = "ok", adds = 1,
    run = function()
      local id = vmtrace.start("step", "junk link",
        { links = { { trace_id = JUNK, span_id = JUNK, attributes = { [JUNK] = JUNK } } } })
      vmtrace.finish(id)
      assert.same({ { trace_id = JUNK, span_id = JUNK, attributes = { [JUNK] = JUNK } } }, vmtrace.get(id).links)
      assert_exports_utf8()
    end },
  { name = "invalid UTF-8 and NUL in opts.metadata, Span:set, Span:event and timing", expect = "ok", adds = 2,
    run = function()
      local s = vmtrace.span("step", JUNK, { metadata = { [JUNK] = JUNK } })
      assert.is_true(s:set(JUNK .. "k", JUNK))
      assert.is_true(s:event(JUNK, { a = JUNK }))
      local sid = s.id
      s:finish()
      local got = vmtrace.get(sid)
      assert.same({ JUNK, JUNK, JUNK, JUNK, { a = JUNK } },
        { got.name, got.metadata[JUNK], got.metadata[JUNK .. "k"], got.events[1].name, got.events[1].attributes })
      local seg = timing.finish(timing.start(JUNK, { [JUNK] = JUNK }))
      assert.same({ JUNK, JUNK }, { seg.name, seg.attributes[JUNK] })
      assert.equal(JUNK, last_span().name)
      assert_exports_utf8()
    end },
  { name = "invalid UTF-8 and NUL in the stream stay valid UTF-8", expect = "ok", adds = 1,
    run = function()
      local path = tmp_path("junk.ndjson")
      assert.is_true(vmtrace.stream(path))
      local id = vmtrace.start("step", JUNK)
      vmtrace.set_metadata(id, JUNK, JUNK)
      vmtrace.record_event(id, JUNK)
      vmtrace.finish(id)
      assert.is_true(vmtrace.stream(nil))
      local text = read_file(path)
      assert_utf8(text, "the stream")
      for line in text:gmatch("[^\n]+") do assert.is_not_nil(vmtrace.json_decode(line), line) end
    end },

  -- sizes ---------------------------------------------------------------------
  { name = "a 10 MB span name: accepted, read back, and on its summary line", expect = "ok", adds = 1,
    run = function()
      local big = ("0123456789abcdef"):rep(10 * 1024 * 1024 / 16)
      local id = vmtrace.start("step", big, { detached = true }) -- a root, so the summary prints it
      assert.is_true(vmtrace.get(id).name == big, "get(id).name is the 10 MB name")
      assert.is_number(vmtrace.finish(id))
      assert.is_true(last_span().name == big, "spans() has the 10 MB name")
      local summary = vmtrace.summary()
      local at = summary:find("\nstep " .. big .. " ", 1, true)
      assert.is_truthy(at, "the summary has a line `step <the name> Nms`")
      assert.is_truthy(summary:find("^%d+ms\n?", at + #big + 7), "the line ends with the duration")
    end },
  { name = "100,000 metadata keys set one by one: the 10,001st is refused, the first 10,000 kept",
    expect = "ok", adds = 1,
    run = function()
      local id = vmtrace.start("step", "many keys")
      local first, failures, tries = nil, 0, 0
      -- every key up to the limit and past it, then a sample of the rest up to
      -- 100,000 (each refusal walks the 10,000 keys: all 90,000 would take
      -- minutes under valgrind)
      for i = 1, 100000, 1 do
        if i > 10100 and i % 97 ~= 0 then goto next end
        tries = tries + 1
        do
          local ok, err = pcall(vmtrace.set_metadata, id, "k" .. i, i)
          if not ok then
            failures = failures + 1
            first = first or { i, err }
          end
        end
        ::next::
      end
      assert.is_not_nil(first, "some key past the limit should be refused")
      assert.equal(10001, first[1])
      assert.is_truthy(first[2]:find(("vmtrace.set_metadata: bad argument #2 (span %d already has 10000 metadata keys")
        :format(id), 1, true), first[2])
      assert.equal(tries - 10000, failures)
      local md = vmtrace.get(id).metadata
      assert.equal(10000, count_keys(md))
      local wrong = 0
      for i = 1, 10000 do if md["k" .. i] ~= i then wrong = wrong + 1 end end
      assert.equal(0, wrong)
      assert.is_true(vmtrace.set_metadata(id, "k1", "replaced"), "an existing key can still be set")
      assert.is_number(vmtrace.finish(id))
      assert.equal(10000, count_keys(last_span().metadata))
    end },
  { name = "one table value with 100,000 keys under a single key", expect = "ok", adds = 1,
    run = function()
      local t = {}
      for i = 1, 100000 do t["k" .. i] = i end
      local id = vmtrace.start("step", "one big value")
      assert.is_true(vmtrace.set_metadata(id, "all", t))
      vmtrace.finish(id)
      local all = vmtrace.get(id).metadata.all
      assert.equal(100000, count_keys(all))
      assert.same({ 1, 100000 }, { all.k1, all.k100000 })
    end },
  { name = "opts.metadata with more than 10,000 keys", expect = "error", fn = "start", arg = 3,
    words = { "more than 10000 keys" },
    run = function()
      local t = {}
      for i = 1, 10001 do t["k" .. i] = i end
      return vmtrace.start("step", "x", { metadata = t })
    end },

  -- nesting, cycles, numbers that JSON has not ---------------------------------
  { name = "a value nested 65 tables deep (set_metadata)", expect = "error", fn = "set_metadata", arg = 3,
    words = { "tables nested deeper than 64 levels at [1][1]" },
    run = function(ids) return vmtrace.set_metadata(ids.open, "deep", nested(65)) end },
  { name = "a value nested 10,000 tables deep (set_metadata)", expect = "error", fn = "set_metadata", arg = 3,
    words = { "tables nested deeper than 64 levels at .x.x.x" },
    run = function(ids)
      local t = {}
      for _ = 1, 10000 do t = { x = t } end
      return vmtrace.set_metadata(ids.open, "deep", t)
    end },
  { name = "event attributes nested 65 tables deep", expect = "error", fn = "record_event", arg = 3,
    words = { "tables nested deeper than 64 levels at .a[1]" },
    run = function(ids) return vmtrace.record_event(ids.open, "ev", { a = nested(64) }) end },
  { name = "opts.metadata nested 65 tables deep", expect = "error", fn = "start", arg = 3,
    words = { "opts.metadata: tables nested deeper than 64 levels" },
    run = function() return vmtrace.start("step", "x", { metadata = { a = nested(64) } }) end },
  { name = "a value nested exactly 64 tables deep is accepted", expect = "ok", adds = 1,
    run = function()
      local id = vmtrace.start("step", "deep ok")
      assert.is_true(vmtrace.set_metadata(id, "deep", nested(64)))
      vmtrace.finish(id)
      assert.same(nested(64), vmtrace.get(id).metadata.deep)
    end },
  { name = "a cyclic table (set_metadata)", expect = "error", fn = "set_metadata", arg = 3,
    words = { "cyclic table at .a.b" },
    run = function(ids) return vmtrace.set_metadata(ids.open, "attempt", cyclic()) end },
  { name = "a cyclic table (set_metadata_if_absent on a completed span)", expect = "error",
    fn = "set_metadata_if_absent", arg = 3, words = { "cyclic table at .a.b" },
    run = function(ids) return vmtrace.set_metadata_if_absent(ids.llm, "fresh", cyclic()) end },
  { name = "a cyclic table (record_event attributes)", expect = "error", fn = "record_event", arg = 3,
    words = { "cyclic table at .a.b" },
    run = function(ids) return vmtrace.record_event(ids.open, "ev", cyclic()) end },
  { name = "a cyclic table (start opts.metadata)", expect = "error", fn = "start", arg = 3,
    words = { "opts.metadata: cyclic table at .a.b" },
    run = function() return vmtrace.start("step", "x", { metadata = cyclic() }) end },
  { name = "a cyclic table (marker metadata)", expect = "error", fn = "marker", arg = 3,
    words = { "cyclic table at .x.a.b" },
    run = function() return vmtrace.marker("step", "m", { x = cyclic() }) end },
  { name = "a cyclic table (Span:set)", expect = "error", fn = "Span:set", arg = 3,
    words = { "cyclic table at .a.b" },
    run = function(ids) return ids.scoped:set("k", cyclic()) end },
  { name = "a cyclic table (timing.start attributes)", expect = "error", fn = "timing.start", arg = 2,
    words = { "cyclic table at .x.a.b" },
    run = function() return timing.start("t", { x = cyclic() }) end },
  { name = "a cyclic table (timing.finish attributes): the handle stays open", expect = "error",
    fn = "timing.finish", arg = 2, words = { "cyclic table at .x.a.b" },
    run = function(ids) return timing.finish(ids.timing, { x = cyclic() }) end },
  { name = "a table shared twice (not a cycle) is accepted", expect = "ok", adds = 1,
    run = function()
      local shared = { 1, 2 }
      local id = vmtrace.start("step", "shared")
      assert.is_true(vmtrace.set_metadata(id, "v", { a = shared, b = { shared, shared } }))
      vmtrace.finish(id)
      assert.same({ a = { 1, 2 }, b = { { 1, 2 }, { 1, 2 } } }, vmtrace.get(id).metadata.v)
    end },
  { name = "NaN, inf and -inf become vmtrace.null (metadata, nested, events, opts)", expect = "ok", adds = 1,
    run = function()
      local id = vmtrace.start("step", "not numbers", { metadata = { o = 0 / 0 } })
      assert.is_true(vmtrace.set_metadata(id, "nan", 0 / 0))
      assert.is_true(vmtrace.set_metadata(id, "inf", math.huge))
      assert.is_true(vmtrace.set_metadata(id, "ninf", -math.huge))
      assert.is_true(vmtrace.set_metadata(id, "t", { a = { math.huge, -math.huge, 0 / 0, 1.5 } }))
      assert.is_true(vmtrace.record_event(id, "ev", { x = 0 / 0 }))
      vmtrace.finish(id)
      local s = vmtrace.get(id)
      assert.same({ null, null, null, null, { null, null, null, 1.5 }, null },
        { s.metadata.o, s.metadata.nan, s.metadata.inf, s.metadata.ninf, s.metadata.t.a, s.events[1].attributes.x })
      assert_exports_utf8()
      local exported = vmtrace.json_decode(vmtrace.export("json"))
      local md = exported[#exported].metadata
      assert.same({ null, null, null }, { md.nan, md.inf, md.ninf }) -- null in the export too
    end },
  { name = "a function inside a table (path in the message)", expect = "error", fn = "set_metadata", arg = 3,
    words = { "function is not JSON-able at .a.b" },
    run = function(ids) return vmtrace.set_metadata(ids.open, "attempt", { a = { b = print } }) end },
  { name = "a userdata inside a table (path in the message)", expect = "error", fn = "set_metadata", arg = 3,
    words = { "userdata is not JSON-able at .a[1]" },
    run = function(ids) return vmtrace.set_metadata(ids.open, "attempt", { a = { io.stdout } }) end },
  { name = "a thread inside a table (path in the message)", expect = "error", fn = "set_metadata", arg = 3,
    words = { "thread is not JSON-able at .a.b.c" },
    run = function(ids)
      return vmtrace.set_metadata(ids.open, "attempt", { a = { b = { c = coroutine.create(print) } } })
    end },
  { name = "a function inside event attributes", expect = "error", fn = "record_event", arg = 3,
    words = { "function is not JSON-able at .x[1]" },
    run = function(ids) return vmtrace.record_event(ids.open, "ev", { x = { print } }) end },
  { name = "a userdata inside opts.metadata", expect = "error", fn = "start", arg = 3,
    words = { "userdata is not JSON-able at .a.b" },
    run = function() return vmtrace.start("step", "x", { metadata = { a = { b = io.stdout } } }) end },
  { name = "a thread inside Span:set's value", expect = "error", fn = "Span:set", arg = 3,
    words = { "thread is not JSON-able at .t" },
    run = function(ids) return ids.scoped:set("k", { t = coroutine.create(print) }) end },
  { name = "a function inside llm_usage's fields is refused before anything is set", expect = "error",
    fn = "llm_usage", arg = 2, words = { "string expected, got function" },
    run = function(ids) return vmtrace.llm_usage(ids.open, { model = print }) end },

  -- documented no-ops -----------------------------------------------------------
  { name = "finish(0)", expect = "noop", returns = "nil", run = function() return vmtrace.finish(0) end },
  { name = "finish(-1)", expect = "noop", returns = "nil", run = function() return vmtrace.finish(-1) end },
  { name = "finish(math.maxinteger) (unknown id)", expect = "noop", returns = "nil",
    run = function() return vmtrace.finish(math.maxinteger) end },
  { name = "finish of a span already finished", expect = "noop", returns = "nil",
    run = function(ids) return vmtrace.finish(ids.llm) end },
  { name = "set_metadata on a completed span", expect = "noop", returns = "false",
    run = function(ids) return vmtrace.set_metadata(ids.llm, "late", 1) end },
  { name = "set_metadata_if_absent of a key that exists", expect = "noop", returns = "false",
    run = function(ids) return vmtrace.set_metadata_if_absent(ids.llm, "model", "other") end },
  { name = "record_event on a completed span", expect = "noop", returns = "false",
    run = function(ids) return vmtrace.record_event(ids.llm, "late") end },
  { name = "span_link of a completed span", expect = "noop", returns = "nil",
    run = function(ids) return vmtrace.span_link(ids.llm) end },
  { name = "tool_mount of an empty list", expect = "noop", returns = "0",
    run = function() return vmtrace.tool_mount({}, "search") end },
  { name = "remove_sink of a sink already removed", expect = "noop", returns = "false",
    run = function()
      local sink = vmtrace.add_sink({ on_end = noop_fn })
      assert.is_true(vmtrace.remove_sink(sink))
      return vmtrace.remove_sink(sink)
    end },
  { name = "start with a bad name while tracing is off: 0, nothing recorded", expect = "noop", returns = "0",
    run = function(_, ctx) ctx.disable(); return vmtrace.start("step", {}) end },
  { name = "a marker while tracing is off", expect = "noop", returns = "0",
    run = function(_, ctx) ctx.disable(); return vmtrace.model_route("a", "b", "c") end },
  { name = "a scoped span while tracing is off is inert", expect = "noop", returns = "false",
    run = function(_, ctx)
      ctx.disable()
      local s = vmtrace.span("step", "off")
      assert.equal(0, s.id)
      assert.same({}, { s:finish() })
      return s:set("k", 1)
    end },
  { name = "Span:set on a handle already finished", expect = "ok", adds = 1,
    run = function()
      local s = vmtrace.span("step", "finished handle")
      local sid = s.id
      assert.is_number(s:finish())
      assert.same({}, { s:finish() })
      assert.is_false(s:set("k", 1))
      assert.is_false(s:event("e"))
      assert.is_nil(vmtrace.get(sid).metadata)
    end },

  -- ids and handles from before a reset -------------------------------------------
  { name = "finish(id) of a span from before a reset", expect = "noop", returns = "nil",
    run = function(ids, ctx) ctx.new_trace(2); return vmtrace.finish(ids.open) end },
  { name = "set_metadata(id) of a span from before a reset", expect = "noop", returns = "false",
    run = function(ids, ctx) ctx.new_trace(2); return vmtrace.set_metadata(ids.open, "k", 1) end },
  { name = "set_metadata_if_absent(id) of a span from before a reset", expect = "noop", returns = "false",
    run = function(ids, ctx) ctx.new_trace(2); return vmtrace.set_metadata_if_absent(ids.open, "k", 1) end },
  { name = "record_event(id) of a span from before a reset", expect = "noop", returns = "false",
    run = function(ids, ctx) ctx.new_trace(2); return vmtrace.record_event(ids.open, "e") end },
  { name = "get(id) of a span from before a reset", expect = "noop", returns = "nil",
    run = function(ids, ctx) ctx.new_trace(2); return vmtrace.get(ids.scoped.id) end },
  { name = "span_link(id) of a span from before a reset", expect = "noop", returns = "nil",
    run = function(ids, ctx) ctx.new_trace(2); return vmtrace.span_link(ids.open) end },
  { name = "llm_usage(id) of a span from before a reset", expect = "noop", returns = "false",
    run = function(ids, ctx) ctx.new_trace(2); return vmtrace.llm_usage(ids.open, { input_tokens = 5 }) end },
  { name = "a scoped handle from before a reset never touches the new span with its id", expect = "ok",
    run = function(ids, ctx)
      ctx.new_trace(8) -- span 6, the handle's id, is open again in the new trace
      assert.is_false(ids.scoped:set("k", "stale"))
      assert.is_false(ids.scoped:event("stale"))
      assert.same({}, { ids.scoped:finish() })
      do local _ <close> = ids.scoped end
      assert.is_true(vmtrace.get(6).open)
    end },
  { name = "a timing handle from before a reset never touches the new span with its id", expect = "ok",
    run = function(ids, ctx)
      ctx.new_trace(8) -- span 5, the handle's id, is open again in the new trace
      assert.is_false(timing.event(ids.timing, "stale"))
      assert.is_true(timing.elapsed_ms(ids.timing) >= 0)
      local seg = timing.finish(ids.timing, { late = true })
      assert.same({ "fixture timing", 5 }, { seg.name, seg.span_id })
      assert.equal(seg, timing.finish(ids.timing), "finishing twice returns the same segment")
      assert.is_true(vmtrace.get(5).open)
    end },
  { name = "reset() while scoped handles are alive, then closed, finished and collected", expect = "ok",
    run = function(_, ctx)
      local a = vmtrace.span("step", "alive a") -- ids 7, 8, 9
      local b = vmtrace.span("step", "alive b")
      local function drop() vmtrace.span("step", "alive c") end
      drop()
      ctx.new_trace(10) -- ids 7..9 belong to new open spans now
      do local _ <close> = a end
      local ok, err = pcall(function()
        local _ <close> = b
        error("closing a stale handle through an error")
      end)
      assert.is_false(ok)
      assert.is_truthy(err:find("closing a stale handle through an error", 1, true), "the error comes through")
      assert.same({}, { a:finish() })
      collectgarbage()
      collectgarbage()
      for id = 7, 9 do
        local s = vmtrace.get(id)
        assert.is_true(s.open)
        assert.same({ i = id }, s.metadata) -- no abandoned, status or error
      end
    end },

  -- coroutines -----------------------------------------------------------------
  { name = "finishing from the main thread a span started in a coroutine", expect = "ok", adds = 1,
    run = function(ids)
      local inner
      local co = coroutine.create(function()
        inner = vmtrace.start("tool_call", "in coroutine")
        coroutine.yield(vmtrace.current_span_id())
        return vmtrace.current_span_id()
      end)
      local _, current = coroutine.resume(co)
      assert.equal(inner, current)
      assert.is_number(vmtrace.finish(inner))
      assert.equal(ids.scoped.id, vmtrace.current_span_id(), "the main stack is as it was")
      local _, after = coroutine.resume(co)
      assert.equal(ids.scoped.id, after, "the span left its coroutine's stack")
      local s = vmtrace.get(inner)
      assert.is_nil(s.open)
      assert.equal(ids.scoped.id, s.parent_id)
    end },
  { name = "finishing from a coroutine a span started on the main thread", expect = "ok", adds = 1,
    run = function(ids)
      local id = vmtrace.start("step", "main span")
      assert.equal(id, vmtrace.current_span_id())
      local dur = coroutine.wrap(function() return vmtrace.finish(id) end)()
      assert.is_number(dur)
      assert.equal(ids.scoped.id, vmtrace.current_span_id(), "the span left the main stack")
      assert.is_nil(vmtrace.get(id).open)
    end },

  -- errors raised inside sinks, <close> bodies, with and timing.timed ---------------
  { name = "a sink that raises loses no span and stops no other sink", expect = "ok", adds = 2,
    run = function(_, ctx)
      local reports, real = {}, io.stderr
      io.stderr = { write = function(_, s) reports[#reports + 1] = s end } -- where vmtrace reports it
      ctx.cleanup(function() io.stderr = real end)
      local seen = {}
      local failing = vmtrace.add_sink({
        on_start = function() error("sink start failed") end,
        on_end = function() error("sink end failed") end,
      })
      local counting = vmtrace.add_sink({
        on_start = function(ev) seen[#seen + 1] = "start " .. ev.name end,
        on_end = function(ev) seen[#seen + 1] = "end " .. ev.name end,
      })
      ctx.cleanup(function() vmtrace.remove_sink(failing); vmtrace.remove_sink(counting) end)
      local a = vmtrace.start("tool_call", "under a failing sink")
      assert.is_number(vmtrace.finish(a))
      local b = vmtrace.start("tool_call", "again")
      assert.is_true(vmtrace.set_metadata(b, "k", 1))
      assert.is_number(vmtrace.finish(b))
      io.stderr = real
      assert.same({ "start under a failing sink", "end under a failing sink", "start again", "end again" }, seen)
      assert.equal(1, #reports, "the failing sink is reported once")
      assert.is_truthy(reports[1]:find("sink start failed", 1, true))
      assert.is_true(vmtrace.remove_sink(failing))
      assert.is_true(vmtrace.remove_sink(counting))
      assert.same({ "under a failing sink", "again" },
        { vmtrace.spans()[3].name, vmtrace.spans()[4].name })
    end },
  { name = "an error inside a <close> body: the span is marked and the error propagates",
    expect = "raises", words = { "body failed" }, adds = 1,
    run = function()
      local s <close> = vmtrace.span("step", "closing")
      s:set("before", 1)
      error("body failed")
    end,
    check = function(_, _, err)
      local s = last_span()
      assert.same({ "closing", "error", err, 1 }, { s.name, s.metadata.status, s.metadata.error, s.metadata.before })
    end },
  { name = "an error object that is a table inside a <close> body comes back as it was",
    expect = "ok", adds = 1,
    run = function()
      local obj = { code = 42 }
      local ok, err = pcall(function()
        local _ <close> = vmtrace.span("step", "closing table")
        error(obj)
      end)
      assert.is_false(ok)
      assert.equal(obj, err)
      local s = last_span()
      -- a readable rendering of its fields, not "(error object is a table value)"
      assert.same({ "closing table", "error", '{"code":42}' },
        { s.name, s.metadata.status, s.metadata.error })
    end },
  { name = "an error inside with's function: the span is marked and the error re-raised",
    expect = "raises", words = { "with body failed" }, adds = 1,
    run = function() return vmtrace.with("tool_call", "with", function() error("with body failed") end) end,
    check = function(ids, _, err)
      local s = last_span()
      assert.same({ "with", "error", err, ids.scoped.id }, { s.name, s.metadata.status, s.metadata.error, s.parent_id })
    end },
  { name = "an error inside timing.timed: the span is marked and the error re-raised",
    expect = "raises", words = { "timed body failed" }, adds = 1,
    run = function() return timing.timed("timed", { n = 1 }, function() error("timed body failed") end) end,
    check = function(_, _, err)
      local s = last_span()
      assert.same({ "user_timing", "timed", "error", err, 1 },
        { s.kind, s.name, s.metadata.status, s.metadata.error, s.metadata.n })
    end },
  { name = "a table raised inside timing.timed comes back as it was", expect = "ok", adds = 1,
    run = function()
      local obj = setmetatable({}, { __tostring = function() return "custom error" end })
      local ok, err = pcall(timing.timed, "timed table", function() error(obj) end)
      assert.is_false(ok)
      assert.equal(obj, err)
      assert.same({ "error", "custom error" }, { last_span().metadata.status, last_span().metadata.error })
    end },

  -- bounded memory ---------------------------------------------------------------
  { name = "configure{max_spans = 2} keeps the newest two and counts the rest as dropped", expect = "ok",
    run = function(ids, ctx)
      assert.equal(2, vmtrace.configure({ max_spans = 2 }).max_spans)
      for _, name in ipairs({ "c1", "c2", "c3" }) do vmtrace.finish(vmtrace.start("step", name)) end
      local kept = vmtrace.spans()
      assert.same({ "c2", "c3" }, { kept[1].name, kept[2].name })
      assert.equal(2, #kept)
      assert.equal(3, vmtrace.dropped()) -- llm, tool and c1
      assert.equal(3, vmtrace.stats().dropped)
      for _, id in ipairs(ctx.open_ids) do assert.same(ctx.snap.open[id], vmtrace.get(id)) end
      assert.is_truthy(vmtrace.summary():find("^Trace: 2 spans, %d+ms total, 3 dropped\n"), vmtrace.summary())
      assert.equal(3, vmtrace.profile().dropped)
      assert.is_truthy(vmtrace.export("profile"):find("2 spans, 3 dropped", 1, true))
      local json = vmtrace.json_decode(vmtrace.export("json"))
      assert.same({ dropped_spans = 3 }, json[#json])
      local otlp = vmtrace.json_decode(vmtrace.export("otlp"))
      local found
      for _, a in ipairs(otlp.resourceSpans[1].resource.attributes) do
        if a.key == "vmtrace.dropped_spans" then found = a.value.intValue end
      end
      assert.equal("3", found)
      assert.equal(3, vmtrace.json_decode(vmtrace.export("chrome")).otherData.dropped_spans)
      assert.is_truthy(vmtrace.export("folded"):find("vmtrace 3 spans dropped 0", 1, true))
      vmtrace.configure({ max_spans = 0 })
      ctx.resnap() -- the eviction was asked for and is asserted above
    end },

  -- I/O failures --------------------------------------------------------------------
  { name = "stream to /dev/full reports the write error when stopped", expect = "fails",
    words = { "vmtrace.stream", "No space left on device" }, adds = 1,
    run = function()
      assert.is_true(vmtrace.stream("/dev/full"))
      vmtrace.finish(vmtrace.start("step", "streamed"))
      return vmtrace.stream(nil)
    end },
  { name = "stream to a directory that does not exist", expect = "fails",
    words = { MISSING_DIR .. "/run.ndjson", "No such file or directory" },
    run = function() return vmtrace.stream(MISSING_DIR .. "/run.ndjson") end },
  { name = "export to a file handle on /dev/full", expect = "fails",
    words = { "vmtrace.export", "No space left on device" },
    run = function(_, ctx)
      local f = assert(io.open("/dev/full", "w"))
      ctx.cleanup(function() f:close() end)
      return vmtrace.export("json", f)
    end },
  { name = "export to a path that is a directory", expect = "fails", words = { "Is a directory" },
    run = function() return vmtrace.export("json", TMP) end },
  { name = "load of a file that does not exist", expect = "fails",
    words = { MISSING_DIR .. "/trace.json", "No such file or directory" },
    run = function() return vmtrace.load(MISSING_DIR .. "/trace.json") end },
  { name = "load of a malformed JSON span list leaves the recorded spans alone", expect = "fails",
    words = { "line 2" },
    run = function()
      local path = tmp_path("bad.json")
      write_file(path, '[{"span_id": 1,\n garbage')
      return vmtrace.load(path)
    end },
  { name = "load of an NDJSON stream of unknown lines leaves the recorded spans alone", expect = "fails",
    words = { "line 1: not a JSON span list nor an NDJSON stream" },
    run = function()
      local path = tmp_path("bad.ndjson")
      write_file(path, '{"type":"bogus"}\n{"type":"bogus"}\n')
      return vmtrace.load(path)
    end },
  { name = "pricing.load of a file that does not exist", expect = "fails",
    words = { "No such file or directory" },
    run = function() return vmtrace.pricing.load(MISSING_DIR .. "/prices.json") end },
  { name = "pricing.load of invalid JSON", expect = "fails", words = { "invalid JSON" },
    run = function()
      local path = tmp_path("prices.json")
      write_file(path, "{prices")
      return vmtrace.pricing.load(path)
    end },
  { name = "pricing.load of a bad price: a message that starts with the file, nothing loaded", expect = "fails",
    words = { "acme/m1: input must be a non-negative number" },
    run = function(_, ctx)
      ctx.path = tmp_path("prices.json")
      write_file(ctx.path, '{"prices": {"acme": {"m0": {"input": 1}, "m1": {"input": -1}}}}')
      return vmtrace.pricing.load(ctx.path)
    end,
    check = function(_, ctx, msg)
      assert.equal(ctx.path .. ": ", msg:sub(1, #ctx.path + 2), "the message starts with the file")
      assert.is_nil(vmtrace.pricing.get("acme", "m0"), "all or nothing")
    end },
  { name = "json_decode of invalid JSON", expect = "fails", words = { "invalid JSON at byte 2" },
    run = function() return vmtrace.json_decode("{") end },
}

-- export of every format: to a missing directory, to /dev/full, to a full tmpfs
for _, f in ipairs(FORMATS) do
  local path = MISSING_DIR .. "/out." .. f
  CASES[#CASES + 1] = {
    name = ("export %s to a directory that does not exist"):format(f), expect = "fails",
    words = { "vmtrace.export", path, "No such file or directory" },
    run = function() return vmtrace.export(f, path) end,
  }
  CASES[#CASES + 1] = {
    name = ("export %s to /dev/full"):format(f), expect = "fails",
    words = { "vmtrace.export", "/dev/full", "No space left on device" },
    run = function() return vmtrace.export(f, "/dev/full") end,
  }
  CASES[#CASES + 1] = {
    name = ("export %s to a full 32 KiB tmpfs: nil, a message, no file left"):format(f),
    expect = "fails", needs = "tmpfs", adds = 1, words = { "vmtrace.export", "No space left on device" },
    run = function(_, ctx)
      -- a trace bigger than the disk in every format: the profile lists LLM
      -- calls by name; folded is weighed by tokens, as a time may round to 0
      vmtrace.finish(vmtrace.start("llm_call", ("t"):rep(40000),
        { detached = true, metadata = { input_tokens = 10 } }))
      ctx.path = ctx.tmpfs .. "/trace." .. f
      return vmtrace.export(f, ctx.path, f == "folded" and { weight = "tokens" } or nil)
    end,
    check = function(_, ctx, msg)
      assert.is_truthy(msg:find(ctx.path, 1, true), "the message names the path")
      assert.same({}, ls(ctx.tmpfs), "no file (nor temporary file) is left")
      local text = vmtrace.export(f, nil, f == "folded" and { weight = "tokens" } or nil)
      assert.is_true(#text > 40000, "the export still works, to a string bigger than the disk")
    end,
  }
end

for _, row in ipairs(type_rows()) do CASES[#CASES + 1] = row end

------------------------------------------------------------------------------
-- the loop
------------------------------------------------------------------------------

describe("bad input (" .. #CASES .. " cases)", function()
  lazy_setup(function()
    TMP = os.tmpname()
    os.remove(TMP)
    assert(os.execute("mkdir -p " .. shq(TMP)))
  end)

  lazy_teardown(function()
    os.execute("umount " .. shq(TMP) .. "/*-tmpfs 2>/dev/null; rm -rf " .. shq(TMP))
    vmtrace.disable()
  end)

  for _, row in ipairs(CASES) do
    it(row.name, function() run_case(row) end)
  end
end)
