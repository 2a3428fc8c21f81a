-- Marker spans (marker, model_route, tool_mount, deferred_tool_load), LLM usage
-- attribution (llm_usage, llm_totals) and the price catalog (vmtrace.pricing).

local vmtrace = require "vmtrace"
local helper = require "spec.helper"

local WALL = 1700000000000

local function find_kind(kind, spans)
  for _, s in ipairs(spans or vmtrace.spans()) do
    if s.kind == kind then return s end
  end
  return nil
end

-- The catalog's cost of `usage`, computed here from pricing.get.
local function expected_cost(provider, model, u)
  local p = vmtrace.pricing.get(provider, model)
  assert.is_not_nil(p, ("test setup: %s/%s should be priced"):format(provider, model))
  return ((u.input_tokens or 0) * p.input + (u.output_tokens or 0) * p.output
    + (u.cache_read_tokens or 0) * p.cache_read
    + (u.cache_write_tokens or 0) * p.cache_write) / 1e6
end

local function write_file(text)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

describe("vmtrace markers", function()
  before_each(function() vmtrace.enable() end)
  after_each(function()
    while vmtrace.unmock_time() do end
    vmtrace.disable()
  end)

  -- seed: test_new_span_kinds_stringify
  it("has the marker kinds (port of test_new_span_kinds_stringify)", function()
    assert.equal("model_route", vmtrace.kinds[19])
    assert.equal("tool_mount", vmtrace.kinds[20])
    assert.equal("deferred_tool_load", vmtrace.kinds[21])
    vmtrace.model_route("a", "b", "c")
    vmtrace.tool_mount({ "t" }, "mcp")
    vmtrace.deferred_tool_load("t", "q")
    local spans = vmtrace.spans()
    assert.equal("model_route", spans[1].kind)
    assert.equal("tool_mount", spans[2].kind)
    assert.equal("deferred_tool_load", spans[3].kind)
  end)

  -- seed: test_marker_spans_nest_under_active_span_and_carry_metadata
  it("nest under the active span and carry metadata (port of test_marker_spans_nest_under_active_span_and_carry_metadata)", function()
    local parent = vmtrace.start("pipeline", "agent_loop")
    vmtrace.model_route("cheap-model", "smart-model", "no_progress")
    vmtrace.tool_mount({ "read", "write" }, "mcp", "filesystem")
    vmtrace.deferred_tool_load("grep", "search files", 4.5)
    vmtrace.finish(parent)

    local spans = vmtrace.spans()
    local route = find_kind("model_route", spans)
    assert.is_not_nil(route, "model_route span")
    assert.equal(parent, route.parent_id)
    assert.equal("smart-model", route.metadata[vmtrace.meta.TO_MODEL])
    assert.equal("cheap-model", route.metadata[vmtrace.meta.FROM_MODEL])

    local mount = find_kind("tool_mount", spans)
    assert.is_not_nil(mount, "tool_mount span")
    assert.equal(2, mount.metadata[vmtrace.meta.TOOL_COUNT])
    assert.equal("mcp", mount.metadata[vmtrace.meta.SOURCE])
    assert.equal("filesystem", mount.metadata[vmtrace.meta.DETAIL])

    local deferred = find_kind("deferred_tool_load", spans)
    assert.is_not_nil(deferred, "deferred_tool_load span")
    assert.equal("grep", deferred.metadata[vmtrace.meta.TOOL_NAME])
    assert.equal(4.5, deferred.metadata[vmtrace.meta.SCORE])
  end)

  -- seed: test_empty_tool_mount_is_a_noop
  it("tool_mount of an empty list is a no-op (port of test_empty_tool_mount_is_a_noop)", function()
    local parent = vmtrace.start("pipeline", "loop")
    vmtrace.tool_mount({}, "mcp", "empty-server")
    vmtrace.finish(parent)
    assert.is_nil(find_kind("tool_mount"))
    assert.equal(1, #vmtrace.spans())
    -- and it used no span id
    assert.equal(parent + 1, vmtrace.start("fn_call", "next"))
  end)

  describe("shape", function()
    it("are zero-duration spans at the mock time, closed at once", function()
      vmtrace.mock_time(WALL)
      local parent = vmtrace.start("pipeline", "p")
      vmtrace.advance_time(50)
      vmtrace.model_route("a", "b", "why")
      vmtrace.tool_mount({ "x" }, "skill")
      vmtrace.deferred_tool_load("x", "find x", 1.25)
      vmtrace.marker("step", "checkpoint", { n = 1 })
      assert.equal(parent, vmtrace.current_span_id())
      vmtrace.finish(parent)
      local spans = vmtrace.spans()
      assert.equal(5, #spans)
      for i = 1, 4 do
        assert.equal(0, spans[i].duration_ms)
        assert.equal(WALL + 50, spans[i].start_unix_ms)
        assert.equal(parent, spans[i].parent_id)
      end
    end)

    it("model_route carries exactly from_model, to_model and reason", function()
      vmtrace.model_route("m1", "m2", "escalate")
      local s = vmtrace.spans()[1]
      assert.equal("model_route", s.kind)
      assert.equal("model_route", s.name)
      assert.same({ from_model = "m1", to_model = "m2", reason = "escalate" }, s.metadata)
    end)

    it("tool_mount carries tool_names, tool_count, source and detail", function()
      vmtrace.tool_mount({ "read", "write", "ls" }, "mcp", "fs-server")
      local s = vmtrace.spans()[1]
      assert.equal("tool_mount", s.kind)
      assert.equal("tool_mount", s.name)
      assert.same({
        tool_names = { "read", "write", "ls" }, tool_count = 3,
        source = "mcp", detail = "fs-server",
      }, s.metadata)
    end)

    it("tool_mount without detail has no detail key", function()
      vmtrace.tool_mount({ "read" }, "search")
      assert.same({ tool_names = { "read" }, tool_count = 1, source = "search" },
        vmtrace.spans()[1].metadata)
    end)

    it("deferred_tool_load carries tool_name, query and score", function()
      vmtrace.deferred_tool_load("grep", "search files", 0.75)
      local s = vmtrace.spans()[1]
      assert.equal("deferred_tool_load", s.kind)
      assert.equal("deferred_tool_load", s.name)
      assert.same({ tool_name = "grep", query = "search files", score = 0.75 }, s.metadata)
    end)

    it("deferred_tool_load without score has no score key", function()
      vmtrace.deferred_tool_load("grep", "q")
      assert.same({ tool_name = "grep", query = "q" }, vmtrace.spans()[1].metadata)
    end)

    it("marker records any kind with its metadata and returns its id", function()
      local parent = vmtrace.start("pipeline", "p")
      local id = vmtrace.marker("drain_decision", "settle", { decision = "keep", n = 2 })
      assert.equal(parent + 1, id)
      assert.equal(parent, vmtrace.current_span_id())
      local s = vmtrace.get(id)
      assert.is_nil(s.open)
      assert.equal("drain_decision", s.kind)
      assert.equal("settle", s.name)
      assert.equal(parent, s.parent_id)
      assert.same({ decision = "keep", n = 2 }, s.metadata)
    end)

    it("marker without metadata records a bare span", function()
      local id = vmtrace.marker("step", "bare")
      assert.is_nil(vmtrace.get(id).metadata)
      assert.equal(1, #vmtrace.spans())
    end)

    it("a marker at the root has no parent", function()
      vmtrace.model_route("a", "b", "c")
      assert.is_nil(vmtrace.spans()[1].parent_id)
    end)
  end)

  describe("while tracing is off", function()
    it("record nothing", function()
      vmtrace.disable()
      vmtrace.reset()
      assert.equal(0, vmtrace.marker("step", "m", { a = 1 }))
      vmtrace.model_route("a", "b", "c")
      vmtrace.tool_mount({ "read" }, "mcp", "d")
      vmtrace.deferred_tool_load("grep", "q", 1.0)
      assert.same({}, vmtrace.spans())
    end)

    it("still reject bad arguments", function()
      vmtrace.disable()
      helper.assert_bad_argument(function() vmtrace.model_route("a", nil, "c") end,
        "model_route", 2, "string")
    end)
  end)

  describe("bad arguments", function()
    it("model_route needs three strings", function()
      helper.assert_bad_argument(function() vmtrace.model_route(1, "b", "c") end,
        "model_route", 1, "string", "number")
      helper.assert_bad_argument(function() vmtrace.model_route("a", {}, "c") end,
        "model_route", 2, "string", "table")
      helper.assert_bad_argument(function() vmtrace.model_route("a", "b") end,
        "model_route", 3, "string", "nil")
    end)

    it("tool_mount needs a list of strings and a source", function()
      helper.assert_bad_argument(function() vmtrace.tool_mount("read", "mcp") end,
        "tool_mount", 1, "table")
      helper.assert_bad_argument(function() vmtrace.tool_mount({ "a", 3 }, "mcp") end,
        "tool_mount", 1, "tool_names[2]", "string")
      helper.assert_bad_argument(function() vmtrace.tool_mount({ "a" }, nil) end,
        "tool_mount", 2, "string")
      helper.assert_bad_argument(function() vmtrace.tool_mount({ "a" }, "mcp", 5) end,
        "tool_mount", 3, "string")
      assert.same({}, vmtrace.spans())
    end)

    it("deferred_tool_load needs strings and a numeric score", function()
      helper.assert_bad_argument(function() vmtrace.deferred_tool_load(nil, "q") end,
        "deferred_tool_load", 1, "string")
      helper.assert_bad_argument(function() vmtrace.deferred_tool_load("t", 1) end,
        "deferred_tool_load", 2, "string")
      helper.assert_bad_argument(function() vmtrace.deferred_tool_load("t", "q", "high") end,
        "deferred_tool_load", 3, "number")
      assert.same({}, vmtrace.spans())
    end)

    it("marker names itself for an unknown kind and lists the kinds", function()
      helper.assert_bad_argument(function() vmtrace.marker("bogus", "x") end,
        "marker", 1, "bogus", "pipeline", "deferred_tool_load")
    end)

    it("marker names itself for metadata that is not JSON-able", function()
      helper.assert_bad_argument(function() vmtrace.marker("step", "x", { f = print }) end,
        "marker", 3, "function")
      helper.assert_bad_argument(function() vmtrace.marker("step", "x", "meta") end,
        "marker", 3, "table")
      assert.same({}, vmtrace.spans())
    end)
  end)
end)

describe("vmtrace.llm_usage", function()
  before_each(function() vmtrace.enable() end)
  after_each(function()
    vmtrace.pricing.defaults()
    vmtrace.disable()
  end)

  -- seed: test_llm_call_usage_metadata_pairs_carry_cache_tokens
  it("carries model, provider, token counts and the given cost (port of test_llm_call_usage_metadata_pairs_carry_cache_tokens)", function()
    local id = vmtrace.start("llm_call", "chat")
    assert.is_true(vmtrace.llm_usage(id, {
      model = "claude-sonnet-4", provider = "anthropic",
      input_tokens = 100, output_tokens = 20,
      cache_read_tokens = 40, cache_write_tokens = 8,
      cost_usd = 0.0123,
    }))
    vmtrace.finish(id)
    local md = vmtrace.get(id).metadata
    local m = vmtrace.meta
    assert.equal("claude-sonnet-4", md[m.MODEL])
    assert.equal("anthropic", md[m.PROVIDER])
    assert.equal(100, md[m.INPUT_TOKENS])
    assert.equal(20, md[m.OUTPUT_TOKENS])
    assert.equal(40, md[m.CACHE_READ_TOKENS])
    assert.equal(8, md[m.CACHE_WRITE_TOKENS])
    assert.equal(0.0123, md[m.COST_USD])
  end)

  -- seed: test_llm_call_usage_omits_cost_when_unpriced
  it("omits cost_usd for an unpriced model (port of test_llm_call_usage_omits_cost_when_unpriced)", function()
    local id = vmtrace.start("llm_call", "local")
    vmtrace.llm_usage(id, {
      model = "local-model", provider = "local", input_tokens = 5, output_tokens = 1,
    })
    vmtrace.finish(id)
    local md = vmtrace.get(id).metadata
    assert.is_nil(md[vmtrace.meta.COST_USD])
    -- token attribution is still present even when unpriced
    assert.equal(5, md[vmtrace.meta.INPUT_TOKENS])
  end)

  it("writes exactly the seven keys, with missing token counts as integer 0", function()
    local id = vmtrace.start("llm_call", "c")
    vmtrace.llm_usage(id, { model = "m", provider = "p", input_tokens = 3, cost_usd = 0.5 })
    local md = vmtrace.get(id).metadata
    assert.same({
      model = "m", provider = "p", input_tokens = 3, output_tokens = 0,
      cache_read_tokens = 0, cache_write_tokens = 0, cost_usd = 0.5,
    }, md)
    for _, k in ipairs { "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens" } do
      assert.equal("integer", math.type(md[k]))
    end
  end)

  it("keeps metadata already on the span", function()
    local id = vmtrace.start("llm_call", "c")
    vmtrace.set_metadata(id, "attempt", 2)
    vmtrace.llm_usage(id, { model = "m", provider = "p" })
    assert.equal(2, vmtrace.get(id).metadata.attempt)
    assert.equal("m", vmtrace.get(id).metadata.model)
  end)

  it("prices a catalog model from vmtrace.pricing", function()
    local usage = {
      model = "claude-sonnet-4", provider = "anthropic",
      input_tokens = 12000, output_tokens = 3400,
      cache_read_tokens = 50000, cache_write_tokens = 2000,
    }
    local id = vmtrace.start("llm_call", "chat")
    vmtrace.llm_usage(id, usage)
    vmtrace.finish(id)
    local cost = vmtrace.get(id).metadata.cost_usd
    assert.is_number(cost)
    assert.is_true(cost > 0)
    assert.near(expected_cost("anthropic", "claude-sonnet-4", usage), cost, 1e-12)
  end)

  it("prices other default catalog entries the way pricing.get says", function()
    for _, pm in ipairs {
      { "openai", "gpt-4o" }, { "openai", "gpt-5-mini" }, { "google", "gemini-2.5-flash" },
      { "anthropic", "claude-3-5-haiku" },
    } do
      local u = { provider = pm[1], model = pm[2], input_tokens = 1000000,
                  output_tokens = 250000, cache_read_tokens = 400000, cache_write_tokens = 10 }
      local id = vmtrace.start("llm_call", pm[2])
      vmtrace.llm_usage(id, u)
      vmtrace.finish(id)
      assert.near(expected_cost(pm[1], pm[2], u), vmtrace.get(id).metadata.cost_usd, 1e-12)
    end
  end)

  it("prices with prices set by hand", function()
    vmtrace.pricing.set("acme", "rocket-1",
      { input = 2, output = 10, cache_read = 0.5, cache_write = 4 })
    local id = vmtrace.start("llm_call", "rocket")
    vmtrace.llm_usage(id, {
      model = "rocket-1", provider = "acme", input_tokens = 1000, output_tokens = 500,
      cache_read_tokens = 2000, cache_write_tokens = 100,
    })
    -- (1000*2 + 500*10 + 2000*0.5 + 100*4) / 1e6 = 8400 / 1e6
    assert.near(0.0084, vmtrace.get(id).metadata.cost_usd, 1e-15)
  end)

  it("prefers usage.cost_usd over the catalog", function()
    local id = vmtrace.start("llm_call", "chat")
    vmtrace.llm_usage(id, { model = "gpt-4o", provider = "openai", input_tokens = 1000000,
                            cost_usd = 0.001 })
    assert.equal(0.001, vmtrace.get(id).metadata.cost_usd)
  end)

  it("returns false and records nothing for a span that is not open", function()
    local id = vmtrace.start("llm_call", "done")
    vmtrace.finish(id)
    assert.is_false(vmtrace.llm_usage(id, { model = "m", provider = "p" }))
    assert.is_nil(vmtrace.get(id).metadata)
    assert.is_false(vmtrace.llm_usage(0, { model = "m", provider = "p" }))
  end)

  it("rejects a usage that is not a table", function()
    local id = vmtrace.start("llm_call", "c")
    helper.assert_bad_argument(function() vmtrace.llm_usage(id, "usage") end,
      "llm_usage", 2, "table")
  end)

  it("rejects non-integral token counts and a non-numeric cost", function()
    local id = vmtrace.start("llm_call", "c")
    helper.assert_bad_argument(function() vmtrace.llm_usage(id, { input_tokens = 1.5 }) end,
      "llm_usage", 2, "input_tokens")
    helper.assert_bad_argument(function() vmtrace.llm_usage(id, { output_tokens = "7" }) end,
      "llm_usage", 2, "output_tokens")
    helper.assert_bad_argument(function() vmtrace.llm_usage(id, { cost_usd = "free" }) end,
      "llm_usage", 2, "cost_usd")
    assert.is_nil(vmtrace.get(id).metadata)
  end)

  it("names itself when the id is not an integer", function()
    helper.assert_bad_argument(function() vmtrace.llm_usage("x", { model = "m" }) end,
      "llm_usage", 1, "integer")
  end)
end)

describe("vmtrace.pricing", function()
  before_each(function() vmtrace.enable() end)
  after_each(function()
    vmtrace.pricing.defaults()
    vmtrace.disable()
  end)

  it("as_of is a YYYY-MM-DD date", function()
    assert.is_string(vmtrace.pricing.as_of)
    assert.truthy(vmtrace.pricing.as_of:match("^%d%d%d%d%-%d%d%-%d%d$"))
    local y, m, d = vmtrace.pricing.as_of:match("^(%d+)%-(%d+)%-(%d+)$")
    assert.is_true(tonumber(y) >= 2024)
    assert.is_true(tonumber(m) >= 1 and tonumber(m) <= 12)
    assert.is_true(tonumber(d) >= 1 and tonumber(d) <= 31)
  end)

  it("set then get returns the prices, missing fields as 0", function()
    vmtrace.pricing.set("acme", "m", { input = 1.5, output = 3 })
    assert.same({ input = 1.5, output = 3, cache_read = 0, cache_write = 0 },
      vmtrace.pricing.get("acme", "m"))
  end)

  it("get finds a model under any provider when the provider is nil or empty", function()
    vmtrace.pricing.set("acme", "only-here", { input = 7 })
    assert.equal(7, vmtrace.pricing.get(nil, "only-here").input)
    assert.equal(7, vmtrace.pricing.get("", "only-here").input)
    assert.is_nil(vmtrace.pricing.get("other", "only-here"))
  end)

  it("get is nil for an unknown model", function()
    assert.is_nil(vmtrace.pricing.get("anthropic", "no-such-model"))
  end)

  it("set rejects bad prices", function()
    helper.assert_bad_argument(function() vmtrace.pricing.set("a", "m", { input = -1 }) end,
      "pricing.set", 3, "input")
    helper.assert_bad_argument(function() vmtrace.pricing.set("a", "m", 5) end,
      "pricing.set", 3, "table")
    helper.assert_bad_argument(function() vmtrace.pricing.set(1, "m", {}) end,
      "pricing.set", 1, "string")
    assert.is_nil(vmtrace.pricing.get("a", "m"))
  end)

  it("defaults() forgets prices set since", function()
    vmtrace.pricing.set("acme", "temp", { input = 1 })
    vmtrace.pricing.defaults()
    assert.is_nil(vmtrace.pricing.get("acme", "temp"))
    assert.is_not_nil(vmtrace.pricing.get("anthropic", "claude-sonnet-4"))
  end)

  it("load reads a JSON catalog and prices models from it", function()
    local path = write_file([[{"as_of": "2025-09-01", "prices": {
      "acme": {"m-large": {"input": 4, "output": 20, "cache_read": 0.4, "cache_write": 5}},
      "zeta": {"z1": {"input": 1}}
    }}]])
    local n, err = vmtrace.pricing.load(path)
    os.remove(path)
    assert.is_nil(err)
    assert.equal(2, n)
    assert.same({ input = 4, output = 20, cache_read = 0.4, cache_write = 5 },
      vmtrace.pricing.get("acme", "m-large"))
    local id = vmtrace.start("llm_call", "large")
    vmtrace.llm_usage(id, { model = "m-large", provider = "acme",
                            input_tokens = 1000, output_tokens = 100 })
    -- (1000*4 + 100*20) / 1e6
    assert.near(0.006, vmtrace.get(id).metadata.cost_usd, 1e-15)
    -- the default catalog is still there
    assert.is_not_nil(vmtrace.pricing.get("openai", "gpt-4o"))
  end)

  it("load returns nil and a message for a missing file", function()
    local path = os.tmpname()
    os.remove(path)
    local n, err = vmtrace.pricing.load(path)
    assert.is_nil(n)
    assert.is_string(err)
  end)

  it("load returns nil and a message for invalid JSON", function()
    local path = write_file('{"prices": {"acme": ')
    local n, err = vmtrace.pricing.load(path)
    os.remove(path)
    assert.is_nil(n)
    assert.is_string(err)
    assert.truthy(err:find("JSON", 1, true))
  end)

  it("load returns nil and a message for a bad catalog and changes nothing", function()
    local path = write_file([[{"prices": {"acme": {
      "good": {"input": 1}, "bad": {"input": -3}}}}]])
    local n, err = vmtrace.pricing.load(path)
    os.remove(path)
    assert.is_nil(n)
    assert.is_string(err)
    assert.truthy(err:find("input", 1, true))
    assert.is_nil(vmtrace.pricing.get("acme", "good"))
  end)

  it("load returns nil and a message without a prices object", function()
    local path = write_file('{"as_of": "2025-01-01"}')
    local n, err = vmtrace.pricing.load(path)
    os.remove(path)
    assert.is_nil(n)
    assert.truthy(err:find("prices", 1, true))
  end)
end)

describe("vmtrace.llm_totals", function()
  before_each(function() vmtrace.enable() end)
  after_each(function()
    vmtrace.pricing.defaults()
    vmtrace.disable()
  end)

  local function call(model, usage)
    local id = vmtrace.start("llm_call", model)
    usage.model = model
    usage.provider = usage.provider or "acme"
    vmtrace.llm_usage(id, usage)
    vmtrace.finish(id)
  end

  it("is all zero without llm calls", function()
    vmtrace.finish(vmtrace.start("tool_call", "t"))
    local t = vmtrace.llm_totals()
    assert.equal(0, t.calls)
    assert.equal(0, t.input_tokens)
    assert.equal(0, t.output_tokens)
    assert.equal(0, t.cache_read_tokens)
    assert.equal(0, t.cache_write_tokens)
    assert.equal(0, t.cost_usd)
    assert.same({}, t.by_model)
  end)

  it("sums calls, tokens and cost in total and by model", function()
    call("a", { input_tokens = 10, output_tokens = 1, cache_read_tokens = 4, cost_usd = 0.25 })
    call("b", { input_tokens = 100, output_tokens = 20, cache_write_tokens = 8, cost_usd = 0.5 })
    call("a", { input_tokens = 5, output_tokens = 2, cost_usd = 0.125 })
    call("unpriced", { input_tokens = 7 })
    vmtrace.finish(vmtrace.start("fn_call", "not an llm call"))
    local open = vmtrace.start("llm_call", "still open")
    vmtrace.llm_usage(open, { model = "a", provider = "acme", input_tokens = 1000, cost_usd = 9 })

    local t = vmtrace.llm_totals()
    assert.equal(4, t.calls)
    assert.equal(122, t.input_tokens)
    assert.equal(23, t.output_tokens)
    assert.equal(4, t.cache_read_tokens)
    assert.equal(8, t.cache_write_tokens)
    assert.near(0.875, t.cost_usd, 1e-15)

    local a = t.by_model.a
    assert.equal(2, a.calls)
    assert.equal(15, a.input_tokens)
    assert.equal(3, a.output_tokens)
    assert.equal(4, a.cache_read_tokens)
    assert.equal(0, a.cache_write_tokens)
    assert.near(0.375, a.cost_usd, 1e-15)

    local b = t.by_model.b
    assert.equal(1, b.calls)
    assert.equal(100, b.input_tokens)
    assert.equal(20, b.output_tokens)
    assert.equal(8, b.cache_write_tokens)
    assert.near(0.5, b.cost_usd, 1e-15)

    local u = t.by_model.unpriced
    assert.equal(1, u.calls)
    assert.equal(7, u.input_tokens)
    assert.equal(0, u.cost_usd)
  end)

  it("includes catalog-priced costs", function()
    vmtrace.pricing.set("acme", "priced", { input = 3, output = 6 })
    call("priced", { input_tokens = 2000, output_tokens = 1000 })
    call("priced", { input_tokens = 1000 })
    local t = vmtrace.llm_totals()
    -- (2000*3 + 1000*6)/1e6 + (1000*3)/1e6 = 0.012 + 0.003
    assert.near(0.015, t.cost_usd, 1e-15)
    assert.near(0.015, t.by_model.priced.cost_usd, 1e-15)
    assert.equal(2, t.by_model.priced.calls)
  end)

  it("follows usage a finished llm_call span gets later (set_metadata_if_absent)", function()
    local id = vmtrace.start("llm_call", "late")
    vmtrace.set_metadata(id, "model", "a")
    vmtrace.finish(id)
    assert.equal(0, vmtrace.llm_totals().input_tokens)
    assert.is_false(vmtrace.llm_usage(id, { model = "a", input_tokens = 1 }), "llm_usage: open spans only")
    vmtrace.set_metadata_if_absent(id, "input_tokens", 40)
    vmtrace.set_metadata_if_absent(id, "cost_usd", 0.5)
    vmtrace.set_metadata_if_absent(id, "input_tokens", 99) -- there already: no change
    local t = vmtrace.llm_totals()
    assert.equal(1, t.calls)
    assert.equal(40, t.input_tokens)
    assert.equal(0.5, t.cost_usd)
    assert.equal(0, t.unpriced)
    assert.same({ calls = 1, input_tokens = 40, cost_usd = 0.5 },
                { calls = t.by_model.a.calls, input_tokens = t.by_model.a.input_tokens,
                  cost_usd = t.by_model.a.cost_usd })
    assert.equal(40, vmtrace.get(id).metadata.input_tokens)
  end)
end)
