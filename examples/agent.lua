-- examples/agent.lua: the vmtrace demo.
--
-- A simulated coding agent fixes a failing test. The run is traced as a tree:
-- a pipeline span, one step span per phase (scoped spans, closed on the way
-- out), and inside each step llm_call spans and tool_call spans. Each LLM
-- call hands vmtrace the provider's response body as the API returns it
-- (Anthropic Messages, OpenAI Chat Completions: shapes as in
-- spec/fixtures/llm) through vmtrace.llm_response, which records the model,
-- response id, finish reasons, normalized tokens and the cost priced from
-- vmtrace's catalog; each call also has a "first_token" event.
-- Along the way the agent mounts MCP tools, loads a deferred tool found by
-- search, and escalates to a stronger model when the cheap one stalls: each
-- is a zero-duration marker span. A std/timing span measures the test run
-- (it would record even with tracing off). Halfway through, the agent
-- suspends for approval; the resume span links back to the suspension.
-- Work is simulated with short busy waits, so durations are real.
--
-- It ends by writing the trace to out/: report.html (open it in a browser),
-- trace.json, trace.otlp.json, trace.trace.json (Perfetto, speedscope) and
-- tokens.folded (flame graphs).
--
-- Run from the repo root:
--   make demo
-- or, after `make`,
--   LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/?.so;;" lua5.4 examples/agent.lua

local vmtrace = require "vmtrace"
local timing = require "vmtrace.timing"

-- Stand-in for real work (network, disk): spin for `ms` milliseconds.
local function work(ms)
  local stop = os.clock() + ms / 1000
  while os.clock() < stop do end
end

-- Response bodies shaped as the providers' APIs return them (decoded JSON;
-- see spec/fixtures/llm for documented examples). A real agent gets them
-- from its HTTP client; here they are made up with plausible numbers.
local serial = 0
local function next_id(prefix)
  serial = serial + 1
  return ("%s01Demo%06d"):format(prefix, serial)
end

-- Anthropic Messages: input_tokens excludes both cache buckets.
local function anthropic_message(model, text, stop_reason, usage)
  return {
    id = next_id("msg_"), type = "message", role = "assistant", model = model,
    content = { { type = "text", text = text } },
    stop_reason = stop_reason, stop_sequence = vmtrace.null,
    usage = {
      input_tokens = usage.input,
      cache_creation_input_tokens = usage.cache_write,
      cache_read_input_tokens = usage.cache_read,
      cache_creation = { ephemeral_5m_input_tokens = usage.cache_write, ephemeral_1h_input_tokens = 0 },
      output_tokens = usage.output,
      service_tier = "standard",
    },
  }
end

-- OpenAI Chat Completions: prompt_tokens includes the cached tokens.
local function openai_chat(model, text, usage)
  return {
    id = next_id("chatcmpl-"), object = "chat.completion", created = 1741570283, model = model,
    choices = { {
      index = 0,
      message = { role = "assistant", content = text, refusal = vmtrace.null, annotations = {} },
      logprobs = vmtrace.null, finish_reason = "stop",
    } },
    usage = {
      prompt_tokens = usage.prompt, completion_tokens = usage.completion,
      total_tokens = usage.prompt + usage.completion,
      prompt_tokens_details = { cached_tokens = usage.cached, audio_tokens = 0 },
      completion_tokens_details = { reasoning_tokens = 0, audio_tokens = 0,
        accepted_prediction_tokens = 0, rejected_prediction_tokens = 0 },
    },
    service_tier = "default", system_fingerprint = "fp_demo",
  }
end

local function llm_call(name, provider, response)
  local id = vmtrace.start("llm_call", name)
  work(3)                                        -- time to first token
  vmtrace.record_event(id, "first_token")
  work(5)                                        -- streaming the rest
  vmtrace.llm_response(id, provider, response)   -- model, tokens, cost, finish reasons
  vmtrace.finish(id)
  return id
end

local function tool_call(tool, ms)
  return vmtrace.with("tool_call", tool, work, ms)
end

vmtrace.enable()
local run = vmtrace.start("pipeline", "fix_failing_test")
local first_llm

do
  local step <close> = vmtrace.span("step", "plan")
  vmtrace.tool_mount({ "read_file", "edit_file", "run_tests" }, "mcp", "workspace")
  first_llm = llm_call("plan_fix", "anthropic", anthropic_message("claude-3-5-haiku-20241022",
    "First reproduce the failure, then read the parser.", "end_turn",
    { input = 2400, output = 310, cache_read = 0, cache_write = 2048 }))
end

do
  local step <close> = vmtrace.span("step", "investigate")
  vmtrace.deferred_tool_load("grep", "search file contents", 0.92)
  tool_call("grep", 2)
  tool_call("read_file", 1)
  llm_call("diagnose", "anthropic", anthropic_message("claude-3-5-haiku-20241022",
    "The test fails in parse_args; I need more context.", "tool_use",
    { input = 5200, output = 420, cache_read = 2048, cache_write = 0 }))
  -- the cheap model did not find the cause: escalate
  vmtrace.model_route("claude-3-5-haiku", "claude-sonnet-4", "no_progress")
  llm_call("diagnose_again", "anthropic", anthropic_message("claude-sonnet-4-20250514",
    "An off-by-one in the token loop drops the last argument.", "end_turn",
    { input = 5600, output = 610, cache_read = 0, cache_write = 4096 }))
end

do
  local step <close> = vmtrace.span("step", "edit")
  step:set("files", { "src/parser.lua" })
  llm_call("write_patch", "anthropic", anthropic_message("claude-sonnet-4-20250514",
    "Patch: iterate to #args, not #args - 1.", "end_turn",
    { input = 6100, output = 880, cache_read = 4096, cache_write = 0 }))
  tool_call("edit_file", 1)
end

-- The agent waits for a human to approve the patch. Take a link to the
-- suspension while it is open; the resume span carries it.
local suspension = vmtrace.start("suspension", "await_approval")
local approval = vmtrace.span_link(suspension)
work(4)
vmtrace.finish(suspension)
local resume = vmtrace.start("resume", "approved", { links = { approval } })
work(1)                                          -- reload the checkpoint
vmtrace.finish(resume)

local tests
do
  local step <close> = vmtrace.span("step", "verify")
  local _, seg = timing.timed("test_suite", { suite = "unit" }, function(h)
    tool_call("run_tests", 6)
    timing.event(h, "all_passed")
  end)
  tests = seg
  llm_call("summarize", "openai", openai_chat("gpt-4o-mini-2024-07-18",
    "Fixed an off-by-one in parse_args; all unit tests pass.",
    { prompt = 3300 + 2048, cached = 2048, completion = 150 }))
end

vmtrace.finish(run)

print(vmtrace.summary())
print()
print(vmtrace.export("profile"))

local ev = vmtrace.get(first_llm).events[1]
print(string.format("event: %q on llm_call plan_fix at +%d ms", ev.name, ev.offset_ms))
local link = vmtrace.get(resume).links[1]
print(string.format("link: resume approved -> span %s of %s", link.span_id, link.trace_id))
print(string.format("timing: %s took %d ms", tests.name, tests.duration_ms))

local totals = vmtrace.llm_totals()
print(string.format("llm: %d calls, %d input + %d output tokens (%d cache read, %d cache write), $%.4f",
  totals.calls, totals.input_tokens, totals.output_tokens, totals.cache_read_tokens,
  totals.cache_write_tokens, totals.cost_usd))
local models = {}
for model in pairs(totals.by_model) do models[#models + 1] = model end
table.sort(models)
for _, model in ipairs(models) do
  local m = totals.by_model[model]
  print(string.format("  %-26s %d calls  $%.4f", model, m.calls, m.cost_usd))
end
print(string.format("(prices from vmtrace's catalog as of %s)", vmtrace.pricing.as_of))

-- The same trace for the tools people already use (make demo creates out/).
local outputs = {
  { "html", "out/report.html", nil, "the trace to look at: open it in a browser (no network needed)" },
  { "json", "out/trace.json", nil, "the span list (vmtrace convert/summary/profile read it back)" },
  { "otlp", "out/trace.otlp.json", { service_name = "vmtrace-demo" },
    "OTLP/JSON: POST it to an OpenTelemetry Collector's /v1/traces" },
  { "chrome", "out/trace.trace.json", nil, "open in ui.perfetto.dev or speedscope.app" },
  { "folded", "out/tokens.folded", { weight = "tokens" },
    "a token flame graph: flamegraph.pl out/tokens.folded > tokens.svg" },
}
print()
for _, o in ipairs(outputs) do
  local ok, err = vmtrace.export(o[1], o[2], o[3])
  if ok then
    print(string.format("wrote %-22s %s", o[2], o[4]))
  else
    print(string.format("could not write %s: %s", o[2], err))
  end
end
