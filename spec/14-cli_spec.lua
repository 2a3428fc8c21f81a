-- The vmtrace command (bin/vmtrace): convert, summary and profile on a JSON
-- span file and on an NDJSON stream written by vmtrace in the test, and its
-- usage errors: exit status 1, one "vmtrace: ..." line, never a traceback.

local vmtrace = require "vmtrace"
local helper = require "spec.helper"

local WALL = 1700000000000

local ROOT = helper.ROOT

local q = helper.shq

local BIN = q(ROOT .. "/bin/vmtrace")

local read = helper.read

local write = helper.write

local FORMATS = { "json", "otlp", "chrome", "folded" }

describe("bin/vmtrace", function()
  local files, fx

  local function tmp()
    local p = os.tmpname()
    files[#files + 1] = p
    return p
  end

  -- Run the command with `args` (already quoted); its stdout, stderr, status.
  local function run(args)
    local errfile = tmp()
    local p = io.popen(BIN .. " " .. args .. " 2>" .. q(errfile))
    local out = p:read("a")
    local _, how, code = p:close()
    return { out = out, err = read(errfile), how = how, code = code }
  end

  local function assert_ok(r)
    assert.equal("", r.err)
    assert.equal("exit", r.how)
    assert.equal(0, r.code)
  end

  -- Exit status 1, nothing on stdout, one "vmtrace: ..." line first on stderr
  -- (matching `pattern`), no Lua traceback.
  local function assert_fails(r, pattern)
    assert.equal("exit", r.how)
    assert.equal(1, r.code)
    assert.equal("", r.out)
    assert.is_nil(r.err:find("stack traceback", 1, true), r.err)
    assert.is_nil(r.err:find("lua5.4:", 1, true), r.err)
    assert.is_nil(r.err:find("internal error", 1, true), r.err)
    local first = r.err:match("^[^\n]*")
    assert.matches("^vmtrace: ", first)
    assert.matches(pattern, first)
    local n = 0
    for l in r.err:gmatch("[^\n]+") do
      if l:match("^vmtrace:") then n = n + 1 end
    end
    assert.equal(1, n, r.err)
  end

  -- A run with steps, LLM calls (tokens, cost), tools, events, links and a
  -- marker, on the mock clock; written both as a JSON span file and as a
  -- stream. fx holds the paths and what vmtrace said about the live spans.
  local function fixture()
    local stream = tmp()
    vmtrace.mock_time(WALL)
    vmtrace.enable()
    assert.is_true(vmtrace.stream(stream))
    local run_id = vmtrace.start("pipeline", "fix_failing_test")
    vmtrace.set_metadata(run_id, "repo", "acme/api")
    vmtrace.advance_time(1)
    for s = 1, 2 do
      local step = vmtrace.start("step", "step_" .. s)
      local call = vmtrace.start("llm_call", "plan_" .. s)
      vmtrace.llm_usage(call, { model = s == 1 and "claude-sonnet-4" or "gpt-4o",
        provider = s == 1 and "anthropic" or "openai", input_tokens = 1000 * s,
        output_tokens = 100 * s, cache_read_tokens = 10 * s, cost_usd = 0.0125 * s })
      vmtrace.advance_time(3 * s)
      vmtrace.record_event(call, "first_token")
      vmtrace.advance_time(4)
      local link = vmtrace.span_link(call)
      vmtrace.finish(call)
      local tool = vmtrace.start("tool_call", "grep_" .. s, { links = { link } })
      vmtrace.set_metadata(tool, "tool_name", "grep")
      vmtrace.advance_time(2 * s)
      vmtrace.finish(tool)
      vmtrace.model_route("claude-sonnet-4", "gpt-4o", "budget")
      vmtrace.advance_time(1)
      vmtrace.finish(step)
    end
    vmtrace.advance_time(2)
    vmtrace.finish(run_id)
    assert.is_true(vmtrace.stream(nil))
    local json = tmp()
    assert.is_true(vmtrace.export("json", json))
    local exports = {}
    for _, f in ipairs(FORMATS) do exports[f] = vmtrace.export(f) end
    for _, w in ipairs { "time", "tokens", "cost" } do
      exports["folded_" .. w] = vmtrace.export("folded", nil, { weight = w })
    end
    local out = {
      inputs = { json = json, ndjson = stream },
      spans = vmtrace.spans(),
      summary = vmtrace.summary(),
      profile_text = vmtrace.export("profile"),
      profile = vmtrace.profile(),
      exports = exports,
    }
    vmtrace.reset()
    vmtrace.unmock_time()
    return out
  end

  before_each(function()
    files = {}
    vmtrace.stream(nil)
    fx = fixture()
  end)

  after_each(function()
    vmtrace.stream(nil)
    while vmtrace.unmock_time() do end
    vmtrace.disable()
    for _, p in ipairs(files) do os.remove(p) end
  end)

  for _, input in ipairs { "json", "ndjson" } do
    describe("on a " .. (input == "json" and "JSON span file" or "NDJSON stream"), function()
      for _, format in ipairs(FORMATS) do
        it("convert --to " .. format .. " prints what vmtrace.export gives for the file's spans",
          function()
            local path = fx.inputs[input]
            local r = run(("convert %s --to %s"):format(q(path), format))
            assert_ok(r)
            -- the same text as exporting the loaded file in this process ...
            assert.equal(#fx.spans, vmtrace.load(path))
            assert.equal(vmtrace.export(format), r.out)
            -- ... which is the original run's export
            assert.equal(fx.exports[format], r.out)
          end)

        it("convert --to " .. format .. " -o OUT writes OUT and nothing on stdout", function()
          local out = tmp()
          os.remove(out)
          local r = run(("convert %s --to %s -o %s"):format(q(fx.inputs[input]), format, q(out)))
          assert_ok(r)
          assert.equal("", r.out)
          assert.equal(fx.exports[format], read(out))
        end)
      end

      for _, weight in ipairs { "time", "tokens", "cost" } do
        it("convert --to folded --weight " .. weight, function()
          local r = run(("convert %s --to folded --weight %s"):format(q(fx.inputs[input]), weight))
          assert_ok(r)
          assert.equal(fx.exports["folded_" .. weight], r.out)
        end)
      end

      it("the token flame graph has each LLM call's tokens", function()
        local r = run(("convert %s --to folded --weight tokens"):format(q(fx.inputs[input])))
        assert_ok(r)
        -- input + output + cache read + cache write
        assert.matches("pipeline fix_failing_test;step step_1;llm_call plan_1 1110\n", r.out, 1, true)
        assert.matches("pipeline fix_failing_test;step step_2;llm_call plan_2 2220\n", r.out, 1, true)
      end)

      it("summary prints vmtrace.summary() of the original spans", function()
        local r = run("summary " .. q(fx.inputs[input]))
        assert_ok(r)
        assert.equal(fx.summary .. "\n", r.out)
        assert.matches("^Trace: 9 spans, 28ms total\n", r.out)
      end)

      it("profile prints the run profile with its numbers", function()
        local r = run("profile " .. q(fx.inputs[input]))
        assert_ok(r)
        assert.equal(fx.profile_text, r.out)
        local p = fx.profile
        assert.equal(28, p.wall_ms)
        assert.matches(("wall time %.3f ms, %d spans"):format(p.wall_ms, p.spans), r.out, 1, true)
        assert.matches(("residual (root time in no child span): %.3f ms"):format(p.residual_ms),
          r.out, 1, true)
        for _, k in ipairs(p.by_kind) do
          assert.matches(("  %-18s %12.3f %8d"):format(k.kind, k.total_ms, k.count), r.out, 1, true)
        end
        for _, s in ipairs(p.steps) do
          assert.matches(("  %-18s %12.3f"):format(s.name, s.duration_ms), r.out, 1, true)
        end
        assert.matches(("llm: %d calls, %d input, %d output, %d cache read"):format(
          p.llm.calls, p.llm.input_tokens, p.llm.output_tokens, p.llm.cache_read_tokens),
          r.out, 1, true)
        assert.matches("llm: 2 calls, 3000 input, 300 output, 30 cache read", r.out, 1, true)
        assert.matches(("$%.4f"):format(p.llm.cost_usd), r.out, 1, true)
        assert.matches("$0.0375", r.out, 1, true)
      end)

      local COMMANDS = {
        "convert %s --to json", "convert %s --to folded -o /dev/null", "summary %s", "profile %s",
      }
      if input == "json" then
        it("a bad line gets the file and line number, for every command", function()
          local lines = {}
          for l in read(fx.inputs[input]):gmatch("[^\n]+") do lines[#lines + 1] = l end
          lines[3] = lines[3]:sub(1, 25) -- a line cut in the middle, not the last one
          local bad = tmp()
          write(bad, table.concat(lines, "\n") .. "\n")
          for _, args in ipairs(COMMANDS) do
            assert_fails(run(args:format(q(bad))), "^vmtrace: " .. bad:gsub("%p", "%%%0") .. ": line 3: ")
          end
        end)
      else
        it("a torn line in the middle is skipped and said on stderr, for every command", function()
          local lines = {}
          for l in read(fx.inputs[input]):gmatch("[^\n]+") do lines[#lines + 1] = l end
          lines[3] = lines[3]:sub(1, 25) -- a line cut in the middle, not the last one
          local bad = tmp()
          write(bad, table.concat(lines, "\n") .. "\n")
          for _, args in ipairs(COMMANDS) do
            local r = run(args:format(q(bad)))
            assert.equal(0, r.code, r.err)
            assert.equal("vmtrace: " .. bad .. ": skipped 1 torn or corrupt line\n", r.err)
          end
        end)
      end
    end)
  end

  it("reads a stream cut short: the open spans are unfinished", function()
    local path = tmp()
    vmtrace.enable() -- the real clock
    assert.is_true(vmtrace.stream(path))
    vmtrace.start("pipeline", "run")
    local done = vmtrace.start("tool_call", "ls")
    vmtrace.set_metadata(done, "i", 1)
    vmtrace.finish(done)
    local open = vmtrace.start("llm_call", "thinking")
    local text = read(path)
    vmtrace.finish(open)
    vmtrace.stream(nil)
    local cut = tmp()
    write(cut, text .. '{"type":"end","span":{"trace_id":"tr') -- killed mid-write

    local r = run("summary " .. q(cut))
    assert_ok(r)
    assert.matches("^Trace: 3 spans, ", r.out)
    assert.matches("\npipeline run %d+ms %(unfinished=true%)\n", r.out)
    assert.matches("\n  tool_call ls 0ms %(i=1%)\n", r.out)
    -- open spans end at the last time the stream saw: thinking's start
    assert.matches("\n  llm_call thinking 0ms %(unfinished=true%)\n", r.out)
  end)

  it("profiles spans whose names hold any bytes", function()
    vmtrace.mock_time(WALL)
    vmtrace.enable()
    local step = vmtrace.start("step", "st\0ep")
    local call = vmtrace.start("llm_call", "pl\0an")
    vmtrace.llm_usage(call, { model = "m\0odel", input_tokens = 5, output_tokens = 1 })
    vmtrace.advance_time(2)
    vmtrace.finish(call)
    vmtrace.finish(vmtrace.start("tool_call", "to\0ol"))
    vmtrace.finish(step)
    local path = tmp()
    assert.is_true(vmtrace.export("json", path))
    local r = run("profile " .. q(path))
    assert_ok(r)
    assert.matches("top llm calls\n  pl", r.out, 1, true)
    assert.matches("llm: 1 calls, 5 input, 1 output", r.out, 1, true)
  end)

  describe("usage errors", function()
    it("with no arguments prints the usage on stdout and exits with 1", function()
      local r = run("")
      assert.equal("exit", r.how)
      assert.equal(1, r.code)
      assert.equal("", r.err)
      assert.matches("^usage: vmtrace convert IN %-%-to json|otlp|chrome|folded", r.out)
      assert.matches("vmtrace summary IN", r.out, 1, true)
      assert.matches("vmtrace profile IN", r.out, 1, true)
    end)

    it("--help prints the usage and exits with 0", function()
      local r = run("--help")
      assert_ok(r)
      assert.matches("^usage: vmtrace convert", r.out)
    end)

    it("an unknown command", function()
      assert_fails(run("frobnicate " .. q(fx.inputs.json)), "unknown command 'frobnicate'")
    end)

    it("an unknown option", function()
      assert_fails(run(("convert %s --to json --fast"):format(q(fx.inputs.json))),
        "unknown option %-%-fast")
      assert_fails(run(("summary -x %s"):format(q(fx.inputs.json))), "unknown option %-x")
    end)

    it("an unknown format", function()
      assert_fails(run(("convert %s --to xml"):format(q(fx.inputs.json))),
        "unknown format 'xml'")
    end)

    it("convert without --to, and --to without a value", function()
      assert_fails(run("convert " .. q(fx.inputs.json)), "%-%-to")
      assert_fails(run(("convert %s --to"):format(q(fx.inputs.json))), "%-%-to needs a value")
    end)

    it("--weight without --to folded, and an unknown weight", function()
      assert_fails(run(("convert %s --to json --weight tokens"):format(q(fx.inputs.json))),
        "%-%-weight")
      assert_fails(run(("convert %s --to folded --weight bytes"):format(q(fx.inputs.json))),
        "unknown weight 'bytes'")
    end)

    it("no input file", function()
      assert_fails(run("summary"), "no input file")
      assert_fails(run("convert --to json"), "no input file")
    end)

    it("a missing input file", function()
      local path = tmp()
      os.remove(path)
      for _, args in ipairs { "convert %s --to otlp", "summary %s", "profile %s" } do
        assert_fails(run(args:format(q(path))),
          "^vmtrace: " .. path:gsub("%p", "%%%0") .. ": No such file or directory$")
      end
    end)

    it("an empty input file", function()
      local path = tmp()
      write(path, "")
      assert_fails(run("summary " .. q(path)), ": line 1: empty input")
    end)

    it("a bad JSON span file gets the line number", function()
      local lines = {}
      for l in read(fx.inputs.json):gmatch("[^\n]+") do lines[#lines + 1] = l end
      local line -- the second llm_call span
      for i = 3, #lines do
        if lines[i]:find('"kind":"llm_call"', 1, true) then
          line = i
          break
        end
      end
      lines[line] = lines[line]:gsub('"kind":"llm_call"', '"kind":"llm"')
      local bad = tmp()
      write(bad, table.concat(lines, "\n") .. "\n")
      for _, args in ipairs { "convert %s --to otlp", "summary %s", "profile %s" } do
        assert_fails(run(args:format(q(bad))), ": line " .. line .. ": unknown span kind 'llm'$")
      end
    end)

    it("an output file that cannot be written", function()
      assert_fails(run(("convert %s --to json -o /nonexistent-dir/out.json"):format(
        q(fx.inputs.json))), "/nonexistent%-dir/out%.json")
      assert_fails(run(("summary %s -o /nonexistent-dir/out.txt"):format(q(fx.inputs.json))),
        "/nonexistent%-dir/out%.txt")
    end)
  end)
end)
