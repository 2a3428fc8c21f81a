-- vmtrace.summary(): the seed's format_summary text, byte for byte.
--
-- Durations cannot be chosen, so every expected text is built from the
-- durations vmtrace itself reports.

local vmtrace = require "vmtrace"
local helper = require "spec.helper"

local function dur(id) return vmtrace.get(id).duration_ms end

-- Summary of a single root span named "s" carrying `meta`, and the text
-- expected for it given the rendered metadata `rendered` (nil: none).
local function single_with(meta)
  local id = vmtrace.start("fn_call", "s")
  for k, v in pairs(meta) do vmtrace.set_metadata(id, k, v) end
  vmtrace.finish(id)
  return id
end

local function expect_single(id, rendered)
  local d = dur(id)
  local line = ("fn_call s %dms"):format(d)
  if rendered then line = line .. " (" .. rendered .. ")" end
  assert.equal(("Trace: 1 spans, %dms total\n\n%s"):format(d, line), vmtrace.summary())
end

describe("vmtrace summary", function()
  before_each(function() vmtrace.enable() end)
  after_each(function() vmtrace.disable() end)

  describe("no spans", function()
    it("says so when nothing was recorded", function()
      assert.equal("No spans recorded.", vmtrace.summary())
    end)

    it("says so while spans are only open", function()
      vmtrace.start("pipeline", "open")
      vmtrace.start("fn_call", "open too")
      assert.equal("No spans recorded.", vmtrace.summary())
    end)

    it("says so after take_spans", function()
      vmtrace.finish(vmtrace.start("pipeline", "x"))
      vmtrace.take_spans()
      assert.equal("No spans recorded.", vmtrace.summary())
    end)
  end)

  describe("tree", function()
    it("prints a single span", function()
      local id = vmtrace.start("pipeline", "main")
      vmtrace.finish(id)
      local d = dur(id)
      assert.equal(("Trace: 1 spans, %dms total\n\npipeline main %dms"):format(d, d), vmtrace.summary())
    end)

    it("indents children two spaces per level under their parent", function()
      local root = vmtrace.start("pipeline", "main")
      local step = vmtrace.start("step", "plan")
      local llm = vmtrace.start("llm_call", "gpt-4")
      vmtrace.finish(llm)
      local tool = vmtrace.start("tool_call", "read file")
      vmtrace.finish(tool)
      vmtrace.finish(step)
      local fn = vmtrace.start("fn_call", "helper")
      vmtrace.finish(fn)
      vmtrace.finish(root)
      local expected = table.concat({
        ("Trace: 5 spans, %dms total"):format(dur(root)),
        "",
        ("pipeline main %dms"):format(dur(root)),
        ("  step plan %dms"):format(dur(step)),
        ("    llm_call gpt-4 %dms"):format(dur(llm)),
        ("    tool_call read file %dms"):format(dur(tool)),
        ("  fn_call helper %dms"):format(dur(fn)),
      }, "\n")
      assert.equal(expected, vmtrace.summary())
    end)

    it("lists roots in finish order and totals only the roots", function()
      local a = vmtrace.start("pipeline", "a")
      local a1 = vmtrace.start("fn_call", "a1")
      local t = os.clock()
      while os.clock() - t < 0.002 do end -- give the spans some length
      vmtrace.finish(a1)
      vmtrace.finish(a)
      local b = vmtrace.start("drain", "b")
      vmtrace.finish(b)
      local c = vmtrace.start("vm_setup", "c")
      vmtrace.finish(c)
      local expected = table.concat({
        ("Trace: 4 spans, %dms total"):format(dur(a) + dur(b) + dur(c)),
        "",
        ("pipeline a %dms"):format(dur(a)),
        ("  fn_call a1 %dms"):format(dur(a1)),
        ("drain b %dms"):format(dur(b)),
        ("vm_setup c %dms"):format(dur(c)),
      }, "\n")
      assert.equal(expected, vmtrace.summary())
    end)

    it("prints a child under its parent even when the parent finished first", function()
      local parent = vmtrace.start("pipeline", "parent")
      local child = vmtrace.start("fn_call", "child")
      vmtrace.finish(parent)
      vmtrace.finish(child)
      local expected = table.concat({
        ("Trace: 2 spans, %dms total"):format(dur(parent)),
        "",
        ("pipeline parent %dms"):format(dur(parent)),
        ("  fn_call child %dms"):format(dur(child)),
      }, "\n")
      assert.equal(expected, vmtrace.summary())
    end)

    it("counts spans whose parent is still open but does not print them", function()
      local open = vmtrace.start("pipeline", "still running")
      local child = vmtrace.start("fn_call", "done child")
      local grandchild = vmtrace.start("tool_call", "done grandchild")
      vmtrace.finish(grandchild)
      vmtrace.finish(child)
      local root = vmtrace.start("drain", "other root", { detached = true })
      vmtrace.finish(root)
      assert.is_true(vmtrace.get(open).open)
      local expected = table.concat({
        ("Trace: 3 spans, %dms total"):format(dur(root)),
        "",
        ("drain other root %dms"):format(dur(root)),
      }, "\n")
      assert.equal(expected, vmtrace.summary())
    end)

    it("counts children of taken spans but does not print them", function()
      local p2 = vmtrace.start("pipeline", "p2")
      local orphan_parent = vmtrace.start("step", "taken soon")
      local orphan = vmtrace.start("fn_call", "orphan")
      vmtrace.finish(orphan_parent) -- out of order: orphan stays open
      vmtrace.take_spans()          -- orphan's parent is gone
      vmtrace.finish(orphan)
      vmtrace.finish(p2)
      local expected = table.concat({
        ("Trace: 2 spans, %dms total"):format(dur(p2)),
        "",
        ("pipeline p2 %dms"):format(dur(p2)),
      }, "\n")
      assert.equal(expected, vmtrace.summary())
    end)

    it("prints a detached span as a root, roots in finish order", function()
      local outer = vmtrace.start("pipeline", "outer")
      local drain = vmtrace.start("drain", "drain", { detached = true })
      vmtrace.finish(drain)
      vmtrace.finish(outer)
      local expected = table.concat({
        ("Trace: 2 spans, %dms total"):format(dur(drain) + dur(outer)),
        "",
        ("drain drain %dms"):format(dur(drain)),
        ("pipeline outer %dms"):format(dur(outer)),
      }, "\n")
      assert.equal(expected, vmtrace.summary())
    end)

    it("has no trailing newline and still works after disable()", function()
      vmtrace.finish(vmtrace.start("pipeline", "p"))
      vmtrace.disable()
      local text = vmtrace.summary()
      assert.is_truthy(text:find("^Trace: 1 spans, %d+ms total\n\npipeline p %d+ms$"), text)
    end)

    it("prints names byte for byte", function()
      local id = vmtrace.start("fn_call", "odd name: (x=1) \"q\"")
      vmtrace.finish(id)
      local d = dur(id)
      assert.equal(("Trace: 1 spans, %dms total\n\nfn_call odd name: (x=1) \"q\" %dms"):format(d, d),
        vmtrace.summary())
    end)

    it("does not show links or events", function()
      local id = vmtrace.start("resume", "r", { links = { { trace_id = "t", span_id = "1" } } })
      vmtrace.record_event(id, "ev", { a = 1 })
      vmtrace.finish(id)
      local d = dur(id)
      assert.equal(("Trace: 1 spans, %dms total\n\nresume r %dms"):format(d, d), vmtrace.summary())
    end)
  end)

  describe("metadata", function()
    it("renders each JSON type like serde_json, keys sorted", function()
      local id = vmtrace.start("fn_call", "s")
      vmtrace.set_metadata(id, "s", "hi")
      vmtrace.set_metadata(id, "i", 42)
      vmtrace.set_metadata(id, "neg", -7)
      vmtrace.set_metadata(id, "big", math.maxinteger)
      vmtrace.set_metadata(id, "small", math.mininteger)
      vmtrace.set_metadata(id, "f", 3.0)
      vmtrace.set_metadata(id, "h", 0.5)
      vmtrace.set_metadata(id, "n", nil)
      vmtrace.set_metadata(id, "t", true)
      vmtrace.set_metadata(id, "no", false)
      vmtrace.set_metadata(id, "arr", { 1, 2 })
      vmtrace.set_metadata(id, "obj", { b = 1, a = "x" })
      vmtrace.set_metadata(id, "empty", {})
      vmtrace.set_metadata(id, "nested", { list = { { k = vmtrace.null }, 2.5, "s" } })
      vmtrace.finish(id)
      expect_single(id, table.concat({
        "arr=[1,2]",
        "big=9223372036854775807",
        "empty={}",
        "f=3.0",
        "h=0.5",
        "i=42",
        "n=null",
        "neg=-7",
        "nested={\"list\":[{\"k\":null},2.5,\"s\"]}",
        "no=false",
        "obj={\"a\":\"x\",\"b\":1}",
        "s=\"hi\"",
        "small=-9223372036854775808",
        "t=true",
      }, ", "))
    end)

    it("sorts keys bytewise", function()
      local id = single_with({ b = 1, B = 2, _ = 3, a1 = 4, a = 5, ["\xc3\xa9"] = 6, ["0"] = 7 })
      expect_single(id, "0=7, B=2, _=3, a=5, a1=4, b=1, \xc3\xa9=6")
    end)

    it("escapes strings like JSON", function()
      local id = single_with({ q = 'say "hi" \\ now\n\ttab\r\b\f\1\0\x1f', u = "naïve ✓\127" })
      expect_single(id, 'q="say \\"hi\\" \\\\ now\\n\\ttab\\r\\b\\f\\u0001\\u0000\\u001f", u="naïve ✓\127"')
    end)

    it("escapes object keys inside values like JSON", function()
      local id = single_with({ o = { ['a"b'] = 1, ["c\nd"] = 2 } })
      expect_single(id, 'o={"a\\"b":1,"c\\nd":2}')
    end)

    it("prints floats the way serde_json does", function()
      local id = single_with({
        a = 1e20, b = 1.5e-7, c = 1.234e16, d = 1.234e15, e = 0.001234,
        f = 5e-324, g = 0.1, h = 1 / 3, i = -0.25, j = 100.0, k = 2.0 ^ 53, l = 123456.789,
        m = 0.0,
      })
      expect_single(id, table.concat({
        "a=1e20", "b=1.5e-7", "c=1.234e16", "d=1234000000000000.0", "e=0.001234",
        "f=5e-324", "g=0.1", "h=0.3333333333333333", "i=-0.25", "j=100.0",
        "k=9007199254740992.0", "l=123456.789", "m=0.0",
      }, ", "))
    end)

    it("prints NaN and infinities, stored as null, as null", function()
      local id = single_with({ nan = 0 / 0, inf = math.huge, ninf = -math.huge })
      expect_single(id, "inf=null, nan=null, ninf=null")
    end)

    it("shows metadata attached late with set_metadata_if_absent", function()
      local id = vmtrace.start("llm_call", "gpt-4")
      vmtrace.finish(id)
      vmtrace.set_metadata_if_absent(id, "first_token_ms", 125)
      local d = dur(id)
      assert.equal(("Trace: 1 spans, %dms total\n\nllm_call gpt-4 %dms (first_token_ms=125)"):format(d, d),
        vmtrace.summary())
    end)
  end)

  describe("against a reference port of format_summary", function()
    it("the reference port agrees with the hand-written expectations", function()
      local root = vmtrace.start("pipeline", "main")
      vmtrace.set_metadata(root, "x", { 1, 2.5, "s" })
      local child = vmtrace.start("fn_call", "helper")
      vmtrace.finish(child)
      vmtrace.finish(root)
      local expected = table.concat({
        ("Trace: 2 spans, %dms total"):format(dur(root)),
        "",
        ("pipeline main %dms (x=[1,2.5,\"s\"])"):format(dur(root)),
        ("  fn_call helper %dms"):format(dur(child)),
      }, "\n")
      assert.equal(expected, helper.reference_summary(vmtrace.spans()))
      assert.equal(expected, vmtrace.summary())
    end)

    it("1,000 spans of a random tree give the same text as the reference", function()
      math.randomseed(20240611)
      local kinds = vmtrace.kinds
      local stack = {}    -- mirrors vmtrace's active stack
      local parent_of = {} -- expected parent of every span
      local started = 0

      local function random_value(i)
        local r = math.random(10)
        if r == 1 then return i end
        if r == 2 then return -i * 1000003 end
        if r == 3 then return i / 8 end
        if r == 4 then return i / 10 end
        if r == 5 then return ("v%d \"quoted\"\n\tnaïve"):format(i) end
        if r == 6 then return i % 2 == 0 end
        if r == 7 then return vmtrace.null end
        if r == 8 then return { i, i / 4, "x", { k = i } } end
        if r == 9 then return { z = i, a = { 1, 2 }, m = {} } end
        return math.maxinteger - i
      end

      while started < 1000 do
        if #stack > 0 and (math.random() < 0.45 or #stack >= 12) then
          -- usually the innermost span; sometimes one further out (out of order)
          local at = math.random() < 0.8 and #stack or math.random(#stack)
          local id = table.remove(stack, at)
          assert.is_not_nil(vmtrace.finish(id))
          if math.random() < 0.1 then
            vmtrace.set_metadata_if_absent(id, "late", started)
          end
        else
          local detached = math.random() < 0.05
          local kind = kinds[math.random(#kinds)]
          local id = vmtrace.start(kind, kind .. " #" .. (started + 1),
            detached and { detached = true } or nil)
          started = started + 1
          assert.equal(started, id)
          parent_of[id] = (not detached) and stack[#stack] or false
          for k = 1, math.random(0, 3) do
            vmtrace.set_metadata(id, ({ "model", "tokens", "Z", "_k", "cost" })[math.random(5)] .. k,
              random_value(started))
          end
          stack[#stack + 1] = id
        end
      end

      -- Leave the three outermost spans open: their finished descendants are
      -- counted but not printed.
      while #stack > 3 do vmtrace.finish(table.remove(stack)) end

      local spans = vmtrace.spans()
      assert.equal(1000 - 3, #spans)
      for _, s in ipairs(spans) do
        assert.equal(parent_of[s.span_id] or nil, s.parent_id)
      end
      assert.equal(helper.reference_summary(spans), vmtrace.summary())

      -- then everything finished
      while #stack > 0 do vmtrace.finish(table.remove(stack)) end
      spans = vmtrace.spans()
      assert.equal(1000, #spans)
      local text = vmtrace.summary()
      assert.equal(helper.reference_summary(spans), text)
      -- every span is printed once: 2 header lines + 1000 span lines
      assert.equal(1002, select(2, text:gsub("\n", "")) + 1)
    end)
  end)
end)
