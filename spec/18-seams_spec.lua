-- The seams between the C core and everything around it (issue 9): one rule
-- for LLM usage everywhere, errors worded in one place and file failures as
-- io.open gives them, span handles that refuse foreign values, load that
-- leaves the stream's trace right. Each test here failed on the code before.

local vmtrace = require "vmtrace"
local helper = require "spec.helper"

local T0 = 1700000000000

local function tmp()
  return os.tmpname()
end

describe("one rule for LLM usage", function()
  before_each(function() vmtrace.enable() end)

  it("a given cost_usd counts the same in llm_totals, the profile and the folded cost weights", function()
    local id = vmtrace.start("llm_call", "think")
    vmtrace.llm_usage(id, { model = "m", provider = "p", input_tokens = 10, cost_usd = 2 })
    vmtrace.finish(id)
    assert.equal(2, vmtrace.llm_totals().cost_usd)
    assert.equal(2, vmtrace.profile().llm.cost_usd)
    assert.equal(2, vmtrace.llm_totals().by_model.m.cost_usd)
    assert.equal(2, vmtrace.profile().llm.by_model.m.cost_usd)
    assert.matches("llm_call think 2000000\n", vmtrace.export("folded", nil, { weight = "cost" }), 1, true)
  end)

  it("the totals survive take_spans and max_spans, and reset clears them", function()
    vmtrace.configure { max_spans = 1 }
    for i = 1, 3 do
      local id = vmtrace.start("llm_call", "c" .. i)
      vmtrace.llm_usage(id, { model = "m", input_tokens = 100, output_tokens = 1, cost_usd = 0.5 })
      vmtrace.finish(id)
    end
    vmtrace.take_spans()
    local t = vmtrace.llm_totals()
    assert.same({ 3, 300, 3, 1.5, 0 }, { t.calls, t.input_tokens, t.output_tokens, t.cost_usd, t.unpriced })
    assert.equal(3, vmtrace.profile().llm.calls)
    vmtrace.reset()
    assert.equal(0, vmtrace.llm_totals().calls)
    vmtrace.configure { max_spans = 0 }
  end)

  it("an unpriced call keeps cost_usd absent and is counted as unpriced", function()
    local id = vmtrace.start("llm_call", "x")
    vmtrace.llm_usage(id, { model = "no-such-model", provider = "nobody", input_tokens = 5 })
    vmtrace.finish(id)
    assert.is_nil(vmtrace.spans()[1].metadata.cost_usd)
    local t = vmtrace.llm_totals()
    assert.equal(1, t.unpriced)
    assert.equal(1, t.by_model["no-such-model"].unpriced)
    assert.matches("unpriced: 1 calls without a price (no-such-model)", vmtrace.export("profile"), 1, true)
  end)
end)

describe("file failures", function()
  before_each(function() vmtrace.enable() end)

  it("return nil, a message and the errno name, as io.open does", function()
    local ok, msg, code = vmtrace.export("json", "/nonexistent-dir-vmtrace/x.json")
    assert.is_nil(ok)
    assert.matches("^vmtrace.export: /nonexistent%-dir%-vmtrace/x.json: No such file or directory$", msg)
    assert.equal("ENOENT", code)
    ok, msg, code = vmtrace.stream("/nonexistent-dir-vmtrace/x.ndjson")
    assert.is_nil(ok)
    assert.matches("No such file or directory", msg, 1, true)
    assert.equal("ENOENT", code)
    ok, msg, code = vmtrace.load("/nonexistent-dir-vmtrace/x.json")
    assert.is_nil(ok)
    assert.matches("No such file or directory", msg, 1, true)
    assert.equal("ENOENT", code)
    ok, msg, code = vmtrace.export("json", "/dev/full")
    assert.is_nil(ok)
    assert.matches("No space left on device", msg, 1, true)
    assert.equal("ENOSPC", code)
  end)

  it("a file that is not a trace gives the status name EINVAL", function()
    local path = tmp()
    local f = io.open(path, "w")
    f:write("hello\n")
    f:close()
    local ok, msg, code = vmtrace.load(path)
    assert.is_nil(ok)
    assert.matches(": line 1: not a JSON span list nor an NDJSON stream", msg, 1, true)
    assert.equal("EINVAL", code)
    os.remove(path)
  end)
end)

describe("span handles", function()
  before_each(function() vmtrace.enable() end)

  it("every metamethod checks its argument: no crash, a clear error", function()
    local s <close> = vmtrace.span("fn_call", "x")
    local mt = getmetatable(s)
    for name, fn in pairs { __tostring = mt.__tostring, __close = mt.__close, __index = mt.__index } do
      for _, foreign in ipairs { 1, "x", {}, io.stdout, true } do
        local ok, err = pcall(fn, foreign, "id")
        assert.is_false(ok, name .. " took a " .. type(foreign))
        assert.matches("span handle expected", err, 1, true)
      end
    end
    assert.is_true(pcall(mt.__gc, io.stdout), "__gc ignores what is not a span handle")
    assert.equal("vmtrace.Span(1)", tostring(s))
  end)

  it("methods called with something else than a handle say so", function()
    local s <close> = vmtrace.span("fn_call", "x")
    for _, m in ipairs { "set", "event", "finish" } do
      helper.assert_bad_argument(function() s[m](io.stdout, "k", 1) end, "Span:" .. m, 1,
        "span handle expected, got userdata")
    end
  end)
end)

describe("load while a stream is open", function()
  it("starts the stream's new trace with the file's trace id and salt", function()
    vmtrace.enable()
    vmtrace.mock_time(T0)
    vmtrace.finish(vmtrace.start("pipeline", "from the file"))
    local file = tmp()
    assert.is_true(vmtrace.export("json", file))
    local want = vmtrace.json_decode(vmtrace.export("json"))[1]
    vmtrace.unmock_time()
    vmtrace.enable() -- another trace
    local stream = tmp()
    assert.is_true(vmtrace.stream(stream))
    vmtrace.finish(vmtrace.start("pipeline", "live"))
    assert.equal(1, (vmtrace.load(file)))
    vmtrace.stream(nil)
    local headers, ends = {}, {}
    for line in io.lines(stream) do
      local r = vmtrace.json_decode(line)
      if r.type == "trace" then headers[#headers + 1] = r end
      if r.type == "end" then ends[#ends + 1] = r.span end
    end
    assert.equal(2, #headers)
    assert.equal(want.trace_id, headers[2].trace_id)
    -- the span read back is in the stream, with the file's exported span id
    assert.equal("from the file", ends[#ends].name)
    assert.equal(want.otel_span_id, ends[#ends].otel_span_id)
    -- and the stream reads back as the loaded trace
    assert.equal(1, (vmtrace.load(stream)))
    assert.equal(want.trace_id, vmtrace.trace_id())
    os.remove(file)
    os.remove(stream)
  end)
end)
