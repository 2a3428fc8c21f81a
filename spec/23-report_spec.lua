-- The HTML report (vmtrace.export("html"), vmtrace report): one file whose
-- data block holds the trace in report/FORMAT.md's encoding. What it shows
-- in a browser is tested by tests/browser/report.test.js (make test runs it
-- in headless Chromium); here, the file itself.

local vmtrace = require "vmtrace"
local helper = require "spec.helper"

local T0 = 1700000000000

-- The data block's JSON text and the page around it.
local function data_of(page)
  local open = '<script type="application/json" id="vmtrace-data">'
  local a = assert(page:find(open, 1, true), "no data block")
  local b = assert(page:find("</script>", a, true), "the data block does not end")
  return page:sub(a + #open, b - 1), page
end

local function decode(text)
  local v, err = vmtrace.json_decode(text)
  assert(v, err)
  return v
end

-- Decoded spans: the parallel arrays undone.
local function spans_of(d)
  local out, id, start = {}, 0, 0
  for k = 1, d.count do
    id = id + d.spans.id[k]
    start = start + d.spans.start[k]
    out[k] = { id = id, parent = d.spans.parent[k] ~= 0 and id - d.spans.parent[k] or nil,
               kind = d.kinds[d.spans.kind[k] + 1], name = d.strings[d.spans.name[k] + 1],
               track = d.spans.track[k], start = start, duration = d.spans.duration[k] }
  end
  return out
end

describe("the HTML report", function()
  before_each(function() vmtrace.enable() end)

  it("is one self-contained page with the trace in its data block", function()
    vmtrace.mock_time(T0)
    local run = vmtrace.start("pipeline", "run")
    vmtrace.advance_time(2)
    local call = vmtrace.start("llm_call", "plan")
    vmtrace.llm_usage(call, { model = "claude-sonnet-4", provider = "anthropic", input_tokens = 1000,
      output_tokens = 100 })
    vmtrace.record_event(call, "first_token", { chunk = 1 })
    vmtrace.advance_time(5)
    vmtrace.finish(call)
    local tool = vmtrace.start("tool_call", "grep", { links = { vmtrace.span_link(run) } })
    vmtrace.advance_time(1)
    vmtrace.finish(tool)
    vmtrace.finish(run)
    local text, page = data_of(vmtrace.export("html", nil, nil))
    assert.matches("^<!DOCTYPE html>", page)
    assert.is_nil(page:find("https?://[%w]", 1), "no address to fetch anything from")
    assert.is_nil(page:find("<link", 1, true))
    assert.is_nil(page:find(" src=", 1, true))
    local d = decode(text)
    assert.same({ "vmtrace-report", 1, vmtrace.trace_id(), 3, 1 },
      { d.format, d.version, d.trace_id, d.count, d.time_unit_ns })
    assert.equal(T0 * 1000000, tonumber(d.origin_unix_ns))
    local s = spans_of(d)
    assert.same({ 1, nil, "pipeline", "run", 0, 8000000 },
      { s[1].id, s[1].parent, s[1].kind, s[1].name, s[1].start, s[1].duration })
    assert.same({ 2, 1, "llm_call", "plan", 2000000, 5000000 },
      { s[2].id, s[2].parent, s[2].kind, s[2].name, s[2].start, s[2].duration })
    assert.same({ 3, 1, "tool_call", "grep", 7000000, 1000000 },
      { s[3].id, s[3].parent, s[3].kind, s[3].name, s[3].start, s[3].duration })
    -- metadata as [index, key, value, ...]; keys in the string table
    assert.equal(1, #d.meta)
    local m = d.meta[1]
    assert.equal(1, m[1])
    local md = {}
    for i = 2, #m, 2 do md[d.strings[m[i] + 1]] = m[i + 1] end
    assert.same({ 1000, 100, "claude-sonnet-4", "anthropic" },
      { md.input_tokens, md.output_tokens, md.model, md.provider })
    assert.same({ 1, "first_token", 0, { chunk = 1 } },
      { d.events[1][1], d.strings[d.events[1][2] + 1], d.events[1][3], d.events[1][4] })
    assert.same({ 2, vmtrace.trace_id(), "1" },
      { d.links[1][1], d.strings[d.links[1][2] + 1], d.links[1][3] })
    assert.same({ 1, 1000, 100 }, { d.totals.llm_calls, d.totals.input_tokens, d.totals.output_tokens })
    -- each string once
    local seen = {}
    for _, str in ipairs(d.strings) do
      assert.is_nil(seen[str], "twice in the string table: " .. str)
      seen[str] = true
    end
  end)

  it("keeps hostile names and metadata inert: no <, > or & in the data block", function()
    local hostile = "</script><script>window.pwned=1</script><!--"
    local id = vmtrace.start("tool_call", hostile)
    vmtrace.set_metadata(id, "note", "a & b > c \u{2028}" .. hostile)
    vmtrace.set_metadata(id, hostile, "\255\0bytes")
    vmtrace.finish(id)
    local text = data_of(vmtrace.export("html"))
    assert.is_nil(text:find("[<>&]"), "raw <, > or & in the data")
    assert.is_nil(text:find("\u{2028}", 1, true))
    local d = decode(text)
    assert.equal(hostile, spans_of(d)[1].name)
    local vals = {}
    for i = 2, #d.meta[1], 2 do vals[d.strings[d.meta[1][i] + 1]] = d.meta[1][i + 1] end
    assert.equal("a & b > c \u{2028}" .. hostile, vals.note)
    assert.equal("\u{FFFD}\0bytes", vals[hostile], "invalid UTF-8 shown as U+FFFD")
    assert.is_truthy(utf8.len(text))
  end)

  it("counts dropped spans and is a valid page for an empty trace", function()
    local d = decode((data_of(vmtrace.export("html"))))
    assert.same({ 0, 0 }, { d.count, d.dropped })
    vmtrace.configure { max_spans = 1 }
    for i = 1, 4 do vmtrace.finish(vmtrace.start("fn_call", "f" .. i)) end
    vmtrace.configure { max_spans = 0 }
    d = decode((data_of(vmtrace.export("html"))))
    assert.same({ 1, 3 }, { d.count, d.dropped })
  end)

  it("vmtrace report FILE writes FILE.html, or -o OUT", function()
    vmtrace.finish(vmtrace.start("pipeline", "from a file"))
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. helper.shq(dir)))
    local json = dir .. "/run.json"
    assert.is_true(vmtrace.export("json", json))
    local code = helper.run(helper.ROOT .. "/bin/vmtrace report " .. helper.shq(json) .. " 2>/dev/null")
    assert.equal(0, code)
    local d = decode((data_of(helper.read(dir .. "/run.html"))))
    assert.equal("from a file", spans_of(d)[1].name)
    code = helper.run(helper.ROOT .. "/bin/vmtrace report " .. helper.shq(json) .. " -o " ..
      helper.shq(dir .. "/other.html") .. " 2>/dev/null")
    assert.equal(0, code)
    assert.is_string(helper.read(dir .. "/other.html"))
    os.execute("rm -rf " .. helper.shq(dir))
  end)
end)
