-- Span metadata: set_metadata, set_metadata_if_absent, the canonical keys,
-- and how Lua values become JSON values and come back.

local vmtrace = require "vmtrace"
local helper = require "spec.helper"

-- Stores `value` under "v" on a fresh span and returns what get() gives back.
local function roundtrip(value)
  local id = vmtrace.start("fn_call", "roundtrip")
  assert.is_true(vmtrace.set_metadata(id, "v", value))
  vmtrace.finish(id)
  return vmtrace.get(id).metadata.v
end

describe("vmtrace metadata", function()
  before_each(function() vmtrace.enable() end)
  after_each(function() vmtrace.disable() end)

  describe("meta keys", function()
    it("vmtrace.meta holds the seed's 17 canonical keys", function()
      assert.same(helper.META, vmtrace.meta)
    end)
  end)

  describe("set_metadata", function()
    -- seed: test_span_metadata
    it("attaches a value to an open span", function()
      local id = vmtrace.start("llm_call", "gpt-4")
      vmtrace.set_metadata(id, "tokens", 100)
      vmtrace.finish(id)
      assert.equal(100, vmtrace.spans()[1].metadata.tokens)
    end)

    it("returns true when applied and shows on the open span", function()
      local id = vmtrace.start("llm_call", "call")
      assert.is_true(vmtrace.set_metadata(id, vmtrace.meta.MODEL, "claude"))
      assert.same({ model = "claude" }, vmtrace.get(id).metadata)
    end)

    it("replaces an existing key", function()
      local id = vmtrace.start("llm_call", "call")
      assert.is_true(vmtrace.set_metadata(id, "k", 1))
      assert.is_true(vmtrace.set_metadata(id, "k", "two"))
      vmtrace.finish(id)
      assert.same({ k = "two" }, vmtrace.get(id).metadata)
    end)

    it("keeps several keys", function()
      local id = vmtrace.start("llm_call", "call")
      vmtrace.set_metadata(id, "b", 2)
      vmtrace.set_metadata(id, "a", 1)
      vmtrace.set_metadata(id, "c", 3)
      vmtrace.finish(id)
      assert.same({ a = 1, b = 2, c = 3 }, vmtrace.get(id).metadata)
    end)

    it("returns false and changes nothing on a completed span", function()
      local id = vmtrace.start("llm_call", "call")
      vmtrace.set_metadata(id, "k", "before")
      vmtrace.finish(id)
      assert.is_false(vmtrace.set_metadata(id, "k", "after"))
      assert.is_false(vmtrace.set_metadata(id, "new", 1))
      assert.same({ k = "before" }, vmtrace.get(id).metadata)
    end)

    it("returns false for unknown ids and 0", function()
      vmtrace.start("pipeline", "p")
      assert.is_false(vmtrace.set_metadata(0, "k", 1))
      assert.is_false(vmtrace.set_metadata(77, "k", 1))
      assert.is_nil(vmtrace.get(1).metadata)
    end)

    it("keeps keys byte for byte", function()
      local id = vmtrace.start("fn_call", "f")
      vmtrace.set_metadata(id, "a\0b", 1)
      vmtrace.set_metadata(id, "\xff\xc0", 2)
      vmtrace.set_metadata(id, "", 3)
      vmtrace.finish(id)
      assert.same({ ["a\0b"] = 1, ["\xff\xc0"] = 2, [""] = 3 }, vmtrace.get(id).metadata)
    end)

    it("copies the value: changing the table afterwards changes nothing", function()
      local id = vmtrace.start("fn_call", "f")
      local t = { list = { 1, 2 }, name = "x" }
      vmtrace.set_metadata(id, "t", t)
      t.name = "y"
      t.list[3] = 3
      vmtrace.finish(id)
      assert.same({ list = { 1, 2 }, name = "x" }, vmtrace.get(id).metadata.t)
    end)
  end)

  describe("set_metadata_if_absent", function()
    -- seed: test_completed_span_metadata_can_be_attached_late
    it("attaches metadata to a completed span, first value wins", function()
      local id = vmtrace.start("llm_call", "gpt-4")
      vmtrace.finish(id)
      vmtrace.set_metadata_if_absent(id, "first_token_ms", 125)
      vmtrace.set_metadata_if_absent(id, "first_token_ms", 250)
      assert.equal(125, vmtrace.spans()[1].metadata.first_token_ms)
    end)

    it("returns true when set and false when the key exists (open span)", function()
      local id = vmtrace.start("llm_call", "call")
      assert.is_true(vmtrace.set_metadata_if_absent(id, "k", "first"))
      assert.is_false(vmtrace.set_metadata_if_absent(id, "k", "second"))
      assert.is_true(vmtrace.set_metadata_if_absent(id, "other", 2))
      assert.same({ k = "first", other = 2 }, vmtrace.get(id).metadata)
    end)

    it("returns true/false on a completed span too", function()
      local id = vmtrace.start("llm_call", "call")
      vmtrace.set_metadata(id, "set_while_open", true)
      vmtrace.finish(id)
      assert.is_false(vmtrace.set_metadata_if_absent(id, "set_while_open", false))
      assert.is_true(vmtrace.set_metadata_if_absent(id, "late", 1))
      assert.same({ set_while_open = true, late = 1 }, vmtrace.get(id).metadata)
      assert.same({ set_while_open = true, late = 1 }, vmtrace.spans()[1].metadata)
    end)

    it("a key stored as null counts as present", function()
      local id = vmtrace.start("llm_call", "call")
      vmtrace.set_metadata(id, "k", nil)
      assert.is_false(vmtrace.set_metadata_if_absent(id, "k", 1))
      assert.equal(vmtrace.null, vmtrace.get(id).metadata.k)
    end)

    it("returns false for unknown ids, 0 and taken spans", function()
      local id = vmtrace.start("llm_call", "call")
      vmtrace.finish(id)
      vmtrace.take_spans()
      assert.is_false(vmtrace.set_metadata_if_absent(id, "k", 1))
      assert.is_false(vmtrace.set_metadata_if_absent(0, "k", 1))
      assert.is_false(vmtrace.set_metadata_if_absent(999, "k", 1))
      assert.same({}, vmtrace.spans())
    end)

    it("reaches the right span among many completed ones", function()
      local ids = {}
      for i = 1, 50 do
        ids[i] = vmtrace.start("step", "s" .. i)
        vmtrace.finish(ids[i])
      end
      assert.is_true(vmtrace.set_metadata_if_absent(ids[17], "mark", 17))
      for i, s in ipairs(vmtrace.spans()) do
        if i == 17 then
          assert.same({ mark = 17 }, s.metadata)
        else
          assert.is_nil(s.metadata)
        end
      end
    end)
  end)

  describe("value conversion", function()
    it("nil becomes JSON null and comes back as vmtrace.null", function()
      assert.equal("userdata", type(vmtrace.null))
      assert.equal(vmtrace.null, roundtrip(nil))
    end)

    it("vmtrace.null is null", function()
      assert.equal(vmtrace.null, roundtrip(vmtrace.null))
    end)

    it("booleans round-trip", function()
      assert.equal(true, roundtrip(true))
      assert.equal(false, roundtrip(false))
    end)

    it("integers keep all 64 bits and stay integers", function()
      for _, n in ipairs({ 0, 1, -1, 100, 9007199254740993, -9007199254740993,
                           math.maxinteger, math.mininteger, math.maxinteger - 1 }) do
        local back = roundtrip(n)
        assert.equal("integer", math.type(back), "math.type of " .. tostring(n))
        assert.equal(n, back)
      end
    end)

    it("floats stay floats with their exact value", function()
      for _, x in ipairs({ 3.0, 0.0, 0.5, 0.1, -2.5, 1e300, 5e-324, 2.0 ^ 53, 2.0 ^ 63, 1 / 3 }) do
        local back = roundtrip(x)
        assert.equal("float", math.type(back), "math.type of " .. tostring(x))
        assert.equal(x, back)
      end
    end)

    it("NaN and infinities become null", function()
      assert.equal(vmtrace.null, roundtrip(0 / 0))
      assert.equal(vmtrace.null, roundtrip(math.huge))
      assert.equal(vmtrace.null, roundtrip(-math.huge))
    end)

    it("strings keep every byte", function()
      local all = {}
      for b = 0, 255 do all[#all + 1] = string.char(b) end
      all = table.concat(all)
      for _, s in ipairs({ "", "plain", "a\0b", "\0", "\xff\xc0", "\xc0\x80",
                           "naïve ✓", '"quoted" \\ \n', all, string.rep("x", 100000) }) do
        assert.equal(s, roundtrip(s))
      end
    end)

    it("a table with keys 1..n is an array", function()
      assert.same({ 1, 2, 3 }, roundtrip({ 1, 2, 3 }))
      assert.same({ "a", 1, true, 2.5 }, roundtrip({ "a", 1, true, 2.5 }))
      local big = {}
      for i = 1, 1000 do big[i] = i end
      assert.same(big, roundtrip(big))
    end)

    it("vmtrace.null inside an array keeps its place", function()
      local back = roundtrip({ vmtrace.null, 1, vmtrace.null })
      assert.equal(3, #back)
      assert.equal(vmtrace.null, back[1])
      assert.equal(1, back[2])
      assert.equal(vmtrace.null, back[3])
    end)

    it("a table with string keys is an object", function()
      assert.same({ a = 1, b = "two", c = false }, roundtrip({ a = 1, b = "two", c = false }))
      assert.same({ none = vmtrace.null }, roundtrip({ none = vmtrace.null }))
    end)

    it("an empty table is an empty object", function()
      local back = roundtrip({})
      assert.equal("table", type(back))
      assert.is_nil(next(back))
    end)

    it("nested arrays and objects round-trip with their numbers' types", function()
      local value = {
        model = "m",
        usage = { input_tokens = 100, cost_usd = 0.0123, ratio = 3.0 },
        tools = { "read", "write" },
        matrix = { { 1, 2 }, { 3, 4 } },
        deep = { a = { b = { c = { d = { math.maxinteger } } } } },
        empty = {},
      }
      local back = roundtrip(value)
      assert.same(value, back)
      assert.equal("float", math.type(back.usage.ratio))
      assert.equal("integer", math.type(back.usage.input_tokens))
      assert.equal("integer", math.type(back.deep.a.b.c.d[1]))
    end)

    it("accepts nesting 64 tables deep", function()
      local t = { "bottom" }
      for _ = 2, 64 do t = { t } end
      local back = roundtrip(t)
      for _ = 1, 63 do back = back[1] end
      assert.same({ "bottom" }, back)
    end)

    it("a table may appear twice when it is not a cycle", function()
      local shared = { x = 1 }
      assert.same({ a = shared, b = shared }, roundtrip({ a = shared, b = shared }))
    end)

    it("conversion also applies to set_metadata_if_absent", function()
      local id = vmtrace.start("fn_call", "f")
      vmtrace.finish(id)
      vmtrace.set_metadata_if_absent(id, "n", math.mininteger)
      vmtrace.set_metadata_if_absent(id, "x", 3.0)
      vmtrace.set_metadata_if_absent(id, "z", nil)
      vmtrace.set_metadata_if_absent(id, "arr", { "\0", 2 })
      local m = vmtrace.get(id).metadata
      assert.equal(math.mininteger, m.n)
      assert.equal("float", math.type(m.x))
      assert.equal(vmtrace.null, m.z)
      assert.same({ "\0", 2 }, m.arr)
    end)
  end)
end)
