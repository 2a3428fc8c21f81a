-- examples/agent.lua: the vmtrace demo.
--
-- A simulated coding agent fixes a failing test. The run is traced as a tree:
-- a pipeline span, one step span per phase, and inside each step an llm_call
-- span (model, provider, token counts and cost under the vmtrace.meta keys,
-- plus a "first_token" event) and tool_call spans. Halfway through, the agent
-- suspends to wait for approval; the resume span links back to the suspension
-- span. Work is simulated with short busy waits, so durations are real.
-- At the end it prints vmtrace.summary() and the event and link the summary
-- does not show.
--
-- Run from the repo root (after `make`):
--   make demo
-- or
--   LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/?.so;;" lua5.4 examples/agent.lua

local vmtrace = require "vmtrace"
local meta = vmtrace.meta

-- Stand-in for real work (network, disk): spin for `ms` milliseconds.
local function work(ms)
  local stop = os.clock() + ms / 1000
  while os.clock() < stop do end
end

-- USD per million tokens.
local PRICE = { input = 3.00, output = 15.00, cache_read = 0.30, cache_write = 3.75 }

local function llm_call(name, tokens)
  local id = vmtrace.start("llm_call", name)
  work(3)                                        -- time to first token
  vmtrace.record_event(id, "first_token", { output_tokens_so_far = 1 })
  work(5)                                        -- streaming the rest
  local cost = (tokens.input * PRICE.input + tokens.output * PRICE.output
    + tokens.cache_read * PRICE.cache_read + tokens.cache_write * PRICE.cache_write) / 1e6
  vmtrace.set_metadata(id, meta.MODEL, "claude-sonnet-4")
  vmtrace.set_metadata(id, meta.PROVIDER, "anthropic")
  vmtrace.set_metadata(id, meta.INPUT_TOKENS, tokens.input)
  vmtrace.set_metadata(id, meta.OUTPUT_TOKENS, tokens.output)
  vmtrace.set_metadata(id, meta.CACHE_READ_TOKENS, tokens.cache_read)
  vmtrace.set_metadata(id, meta.CACHE_WRITE_TOKENS, tokens.cache_write)
  vmtrace.set_metadata(id, meta.COST_USD, math.floor(cost * 1e6 + 0.5) / 1e6)
  vmtrace.finish(id)
  return id
end

local function tool_call(tool, ms)
  local id = vmtrace.start("tool_call", tool)
  vmtrace.set_metadata(id, meta.TOOL_NAME, tool)
  work(ms)
  vmtrace.finish(id)
end

local function step(name, fn)
  local id = vmtrace.start("step", name)
  fn()
  vmtrace.finish(id)
end

vmtrace.enable()
local run = vmtrace.start("pipeline", "fix_failing_test")
local first_llm

step("plan", function()
  first_llm = llm_call("plan_fix", { input = 2400, output = 310, cache_read = 0, cache_write = 2048 })
end)

step("investigate", function()
  tool_call("grep", 2)
  tool_call("read_file", 1)
  llm_call("diagnose", { input = 5200, output = 420, cache_read = 2048, cache_write = 0 })
end)

step("edit", function()
  llm_call("write_patch", { input = 6100, output = 880, cache_read = 4096, cache_write = 0 })
  tool_call("edit_file", 1)
end)

-- The agent waits for a human to approve the patch. Take a link to the
-- suspension while it is open; the resume span carries it.
local suspension = vmtrace.start("suspension", "await_approval")
local approval = vmtrace.span_link(suspension)
work(4)
vmtrace.finish(suspension)
local resume = vmtrace.start("resume", "approved", { links = { approval } })
work(1)                                          -- reload the checkpoint
vmtrace.finish(resume)

step("verify", function()
  tool_call("run_tests", 6)
  llm_call("summarize", { input = 3300, output = 150, cache_read = 6144, cache_write = 0 })
end)

vmtrace.finish(run)

print(vmtrace.summary())
print()

local ev = vmtrace.get(first_llm).events[1]
print(string.format("event: %q on llm_call plan_fix at +%d ms", ev.name, ev.offset_ms))
local link = vmtrace.get(resume).links[1]
print(string.format("link: resume approved -> span %s of %s", link.span_id, link.trace_id))
