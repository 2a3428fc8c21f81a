-- LLM usage that cannot be silently wrong (issue 12): provider response
-- bodies normalized by llm_response, prices for dated model ids, llm_usage
-- refusing what it would record wrong, totals that survive max_spans, and
-- the GenAI semantic-convention attributes in OTLP.
--
-- The bodies are spec/fixtures/llm/*.json (real-shaped responses, see the
-- README there) and the records they must give are spec/fixtures/llm/expected.lua.

local vmtrace = require "vmtrace"
local helper = require "spec.helper"

local FIXTURES = helper.ROOT .. "/spec/fixtures/llm/"
local EXPECTED = dofile(FIXTURES .. "expected.lua")

local function body(file)
  return assert(vmtrace.json_decode(helper.read(FIXTURES .. file)))
end

local function files()
  local list = {}
  for file in pairs(EXPECTED) do list[#list + 1] = file end
  table.sort(list)
  return list
end

--- The span's record as llm_response left it, with its cost kept apart.
local function record(id)
  local md = vmtrace.get(id).metadata
  local rec = {}
  for k, v in pairs(md) do rec[k] = v end
  local cost = rec.cost_usd
  rec.cost_usd = nil
  return rec, cost
end

local function respond(provider, b, name)
  local id = vmtrace.start("llm_call", name or "call")
  assert.is_true(vmtrace.llm_response(id, provider, b))
  vmtrace.finish(id)
  return id
end

describe("vmtrace.llm_response", function()
  before_each(function() vmtrace.enable() end)
  after_each(function()
    vmtrace.pricing.defaults()
    vmtrace.configure { max_spans = 0 }
  end)

  it("has a fixture for each of the four API shapes", function()
    local list = files()
    assert.same({ "anthropic_messages.json", "gemini_generate_content.json", "openai_chat.json",
      "openai_chat_n2.json", "openai_responses.json", "openai_responses_incomplete.json" }, list)
  end)

  for _, file in ipairs(files()) do
    local want = EXPECTED[file]
    it("records exactly the expected record for " .. file, function()
      local id = respond(want.provider, body(file), file)
      local got, cost = record(id)
      local exact = {}
      for k, v in pairs(want) do exact[k] = v end
      exact.cost_usd = nil
      assert.same(exact, got)
      for _, k in ipairs { "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens" } do
        assert.equal("integer", math.type(got[k]), k .. " is an integer")
      end
      assert.is_number(cost, file .. " is priced")
      assert.near(want.cost_usd, cost, want.cost_usd * 1e-9)
    end)
  end

  it("takes 'gemini' as another name of the provider 'google'", function()
    local id = respond("gemini", body("gemini_generate_content.json"))
    local got = record(id)
    assert.equal("google", got.provider)
    assert.equal(1500, got.input_tokens)
  end)

  it("tells OpenAI Chat Completions from Responses by their fields when object is missing", function()
    local chat, resp = body("openai_chat.json"), body("openai_responses.json")
    chat.object, resp.object = nil, nil
    local a = record(respond("openai", chat))
    local b = record(respond("openai", resp))
    assert.same({ 86, 1920, 300, { "stop" } }, { a.input_tokens, a.cache_read_tokens, a.output_tokens, a.finish_reasons })
    assert.same({ 208, 1152, 1186, { "completed" } }, { b.input_tokens, b.cache_read_tokens, b.output_tokens, b.finish_reasons })
  end)

  it("takes OpenAI cache writes out of the prompt count (GPT-5.6 and later)", function()
    local b = body("openai_chat.json")
    b.usage.prompt_tokens_details.cache_write_tokens = 50
    local got = record(respond("openai", b))
    assert.same({ 36, 1920, 50 }, { got.input_tokens, got.cache_read_tokens, got.cache_write_tokens })
    b = body("openai_responses.json")
    b.usage.input_tokens_details.cache_write_tokens = 200
    got = record(respond("openai", b))
    assert.same({ 8, 1152, 200 }, { got.input_tokens, got.cache_read_tokens, got.cache_write_tokens })
  end)

  it("reads counts that a JSON decoder gave as whole floats", function()
    local b = body("anthropic_messages.json")
    b.usage.input_tokens, b.usage.output_tokens = 472.0, 65.0
    local got = record(respond("anthropic", b))
    assert.same({ 472, 65 }, { got.input_tokens, got.output_tokens })
    assert.equal("integer", math.type(got.input_tokens))
  end)

  it("treats absent or null cache counts as 0", function()
    local b = body("anthropic_messages.json")
    b.usage.cache_creation_input_tokens = vmtrace.null
    b.usage.cache_read_input_tokens = nil
    local got = record(respond("anthropic", b))
    assert.same({ 472, 0, 0, 65 }, { got.input_tokens, got.cache_read_tokens, got.cache_write_tokens, got.output_tokens })
    b = body("openai_chat.json")
    b.usage.prompt_tokens_details = nil
    got = record(respond("openai", b))
    assert.same({ 2006, 0 }, { got.input_tokens, got.cache_read_tokens })
  end)

  it("gives an empty finish_reasons list for a Gemini prompt blocked before any candidate", function()
    local b = body("gemini_generate_content.json")
    b.candidates = nil
    b.promptFeedback = { blockReason = "SAFETY" }
    local got = record(respond("google", b))
    assert.same({}, got.finish_reasons)
  end)

  it("keeps cost_usd absent for an unpriced model, and counts it as unpriced", function()
    local b = body("openai_chat.json")
    b.model = "ft:gpt-4o-2024-08-06:acme::abc123"
    local id = respond("openai", b)
    local _, cost = record(id)
    assert.is_nil(cost)
    local t = vmtrace.llm_totals()
    assert.equal(1, t.unpriced)
    assert.equal(1, t.by_model["ft:gpt-4o-2024-08-06:acme::abc123"].unpriced)
    assert.matches("(ft:gpt-4o-2024-08-06:acme::abc123)", vmtrace.export("profile"), 1, true)
  end)

  it("prices from the catalog as it is now (pricing.set wins over the defaults)", function()
    vmtrace.pricing.set("anthropic", "claude-sonnet-4-20250514", { input = 1, output = 1, cache_read = 1, cache_write = 1 })
    local _, cost = record(respond("anthropic", body("anthropic_messages.json")))
    assert.near((472 + 3072 + 1820 + 65) / 1e6, cost, 1e-15)
  end)

  it("keeps metadata already on the span and returns false for a span that is not open", function()
    local id = vmtrace.start("llm_call", "c")
    vmtrace.set_metadata(id, "attempt", 2)
    assert.is_true(vmtrace.llm_response(id, "anthropic", body("anthropic_messages.json")))
    assert.equal(2, vmtrace.get(id).metadata.attempt)
    vmtrace.finish(id)
    assert.is_false(vmtrace.llm_response(id, "anthropic", body("anthropic_messages.json")))
    assert.is_false(vmtrace.llm_response(987654, "anthropic", body("anthropic_messages.json")))
    vmtrace.disable()
    assert.is_false(vmtrace.llm_response(0, "anthropic", body("anthropic_messages.json")))
  end)

  describe("refuses", function()
    local function refused(argn, words, id, provider, b)
      helper.assert_bad_argument(function() return vmtrace.llm_response(id, provider, b) end,
        "llm_response", argn, table.unpack(words))
    end

    it("a response that is not a table", function()
      local id = vmtrace.start("llm_call", "c")
      refused(3, { "table", "string" }, id, "openai", '{"id":"x"}')
      refused(3, { "table", "nil" }, id, "openai", nil)
      refused(3, { "table with string keys", "array" }, id, "openai", { 1, 2 })
      assert.is_nil(vmtrace.get(id).metadata)
    end)

    it("an unknown provider, listing the known ones", function()
      local id = vmtrace.start("llm_call", "c")
      refused(2, { "unknown provider 'cohere'", "openai, anthropic, google, gemini" }, id, "cohere",
        body("openai_chat.json"))
      refused(2, { "string expected" }, id, nil, body("openai_chat.json"))
    end)

    it("a span that is not an llm_call, as llm_usage does", function()
      local id = vmtrace.start("tool_call", "grep")
      refused(1, { "tool_call span", "llm_call" }, id, "anthropic", body("anthropic_messages.json"))
      assert.is_nil(vmtrace.get(id).metadata)
    end)

    it("a body of another API than the provider named", function()
      local id = vmtrace.start("llm_call", "c")
      refused(3, { "not an OpenAI Chat Completions or Responses body" }, id, "openai", body("anthropic_messages.json"))
      refused(3, { "not an OpenAI Chat Completions or Responses body" }, id, "openai", body("gemini_generate_content.json"))
      refused(3, { "not an Anthropic Messages body" }, id, "anthropic", body("openai_chat.json"))
      refused(3, { "not an Anthropic Messages body" }, id, "anthropic", body("openai_responses.json"))
      refused(3, { "usageMetadata" }, id, "google", body("anthropic_messages.json"))
      assert.is_nil(vmtrace.get(id).metadata)
    end)

    it("a body without its usage block (it would be a free call)", function()
      local id = vmtrace.start("llm_call", "c")
      local b = body("openai_chat.json")
      b.usage = nil
      refused(3, { "no usage object" }, id, "openai", b)
      b = body("gemini_generate_content.json")
      b.usageMetadata = nil
      refused(3, { "no usageMetadata object" }, id, "google", b)
    end)

    it("counts that are not token counts, naming the field", function()
      local id = vmtrace.start("llm_call", "c")
      for _, bad in ipairs { -1, 1.5, 2 ^ 53 + 2, 1e300, "300", true } do
        local b = body("openai_chat.json")
        b.usage.completion_tokens = bad
        refused(3, { "usage.completion_tokens must be a token count" }, id, "openai", b)
      end
      local b = body("gemini_generate_content.json")
      b.usageMetadata.thoughtsTokenCount = -5
      refused(3, { "usageMetadata.thoughtsTokenCount" }, id, "google", b)
    end)

    it("cached tokens larger than the prompt that includes them", function()
      local id = vmtrace.start("llm_call", "c")
      local b = body("openai_chat.json")
      b.usage.prompt_tokens_details.cached_tokens = 3000
      refused(3, { "usage.prompt_tokens_details.cached_tokens is larger than usage.prompt_tokens" }, id, "openai", b)
      b = body("gemini_generate_content.json")
      b.usageMetadata.cachedContentTokenCount = 20000
      refused(3, { "cachedContentTokenCount is larger than usageMetadata.promptTokenCount" }, id, "gemini", b)
    end)

    it("a body that cannot be converted (a function inside)", function()
      local id = vmtrace.start("llm_call", "c")
      local b = body("anthropic_messages.json")
      b.content[1].callback = print
      refused(3, { "response: " }, id, "anthropic", b)
    end)
  end)
end)

describe("prices for the model ids the APIs return", function()
  after_each(function() vmtrace.pricing.defaults() end)

  it("the catalog loads and pricing.as_of is the catalog's date", function()
    package.loaded["vmtrace.prices"] = nil
    local catalog = require "vmtrace.prices"
    vmtrace.pricing.defaults()
    assert.equal(catalog.as_of, vmtrace.pricing.as_of)
    assert.matches("^%d%d%d%d%-%d%d%-%d%d$", vmtrace.pricing.as_of)
    local n = 0
    for provider, models in pairs(catalog.prices) do
      for model, p in pairs(models) do
        n = n + 1
        local got, matched = vmtrace.pricing.get(provider, model)
        assert.equal(model, matched, provider .. "/" .. model .. " is its own entry")
        assert.same({ p.input, p.output, p.cache_read or 0, p.cache_write or 0 },
          { got.input, got.output, got.cache_read, got.cache_write })
        assert.is_string(p.source, model .. " says where its price comes from")
      end
    end
    assert.is_true(n > 20)
  end)

  it("every fixture's dated model id finds its catalog entry", function()
    local want = {
      ["gpt-4o-2024-08-06"] = "gpt-4o",
      ["gpt-4o-mini-2024-07-18"] = "gpt-4o-mini",
      ["o4-mini-2025-04-16"] = "o4-mini",
      ["gpt-5-2025-08-07"] = "gpt-5",
      ["claude-sonnet-4-20250514"] = "claude-sonnet-4",
      ["gemini-2.5-flash"] = "gemini-2.5-flash",
    }
    for _, file in ipairs(files()) do
      local e = EXPECTED[file]
      local p, matched = vmtrace.pricing.get(e.provider, e.model)
      assert.is_table(p, e.model)
      assert.equal(want[e.model], matched, e.model)
    end
  end)

  it("takes the longest entry, an exact entry winning, and '-' or '@' after it", function()
    assert.equal("gpt-4o-mini", select(2, vmtrace.pricing.get("openai", "gpt-4o-mini-2024-07-18")))
    assert.equal("gpt-4o-2024-05-13", select(2, vmtrace.pricing.get("openai", "gpt-4o-2024-05-13")))
    assert.equal("claude-sonnet-4-5", select(2, vmtrace.pricing.get("anthropic", "claude-sonnet-4-5-20250929")))
    assert.equal("claude-sonnet-4", select(2, vmtrace.pricing.get("anthropic", "claude-sonnet-4@20250514")))
    assert.equal("gemini-2.5-flash-lite", select(2, vmtrace.pricing.get("google", "gemini-2.5-flash-lite-preview-09-2025")))
    -- a version after a dot is another model: gpt-5.1 is not priced as gpt-5
    assert.is_nil(vmtrace.pricing.get("openai", "gpt-5.1"))
    assert.is_nil(vmtrace.pricing.get("openai", "gpt-4.1x"))
    assert.is_nil(vmtrace.pricing.get("openai", "gpt-4o:latest"))
  end)
end)

describe("vmtrace.llm_usage refusals", function()
  before_each(function() vmtrace.enable() end)

  local function refused(words, id, usage)
    return helper.assert_bad_argument(function() return vmtrace.llm_usage(id, usage) end,
      "llm_usage", 2, table.unpack(words))
  end

  it("an unknown key, naming it and pointing to llm_response", function()
    local id = vmtrace.start("llm_call", "c")
    refused({ "unknown usage key 'prompt_tokens'", "vmtrace.llm_response" }, id, { prompt_tokens = 10 })
    refused({ "unknown usage key 'completion_tokens'", "vmtrace.llm_response" }, id, { completion_tokens = 10 })
    refused({ "unknown usage key 'cache_creation_input_tokens'", "vmtrace.llm_response" }, id,
      { cache_creation_input_tokens = 10 })
    local err = refused({ "unknown usage key 'temperature'" }, id, { temperature = 0.2 })
    assert.is_nil(err:find("llm_response", 1, true), "no hint for a key that is no provider's")
    assert.is_nil(vmtrace.get(id).metadata, "nothing was recorded")
  end)

  it("a negative count", function()
    refused({ "usage.output_tokens must be from 0 to 2^53, got -1" }, vmtrace.start("llm_call", "c"), { output_tokens = -1 })
  end)

  it("a count that is not integral", function()
    local id = vmtrace.start("llm_call", "c")
    refused({ "usage.input_tokens must be an integer, got 1.5" }, id, { input_tokens = 1.5 })
    refused({ "usage.input_tokens must be an integer" }, id, { input_tokens = 0 / 0 })
    refused({ "usage.input_tokens must be an integer, got string" }, id, { input_tokens = "10" })
  end)

  it("a count beyond 2^53, an integral float such as 1e300 included", function()
    local id = vmtrace.start("llm_call", "c")
    refused({ "usage.cache_read_tokens must be from 0 to 2^53, got 1.0000000000000001e+300" }, id,
      { cache_read_tokens = 1e300 })
    refused({ "got 9007199254740994" }, id, { cache_read_tokens = 2.0 ^ 53 + 2 })
    refused({ "got 9007199254740993" }, id, { cache_read_tokens = (1 << 53) + 1 })
    refused({ "got inf" }, id, { cache_write_tokens = math.huge })
    refused({ "got 9223372036854775807" }, id, { input_tokens = math.maxinteger })
    assert.is_nil(vmtrace.get(id).metadata)
    -- 2^53 itself is a count, as an integer and as a float
    assert.is_true(vmtrace.llm_usage(id, { input_tokens = 1 << 53, output_tokens = 2.0 ^ 53 }))
    assert.equal(1 << 53, vmtrace.get(id).metadata.output_tokens)
    assert.equal("integer", math.type(vmtrace.get(id).metadata.output_tokens))
  end)

  it("a span that is not an llm_call: an error", function()
    local id = vmtrace.start("tool_call", "t")
    helper.assert_bad_argument(function() return vmtrace.llm_usage(id, { input_tokens = 1 }) end,
      "llm_usage", 1, "span " .. id .. " is a tool_call span", "llm_call")
    assert.is_nil(vmtrace.get(id).metadata)
  end)
end)

describe("llm_totals under max_spans", function()
  before_each(function() vmtrace.enable() end)
  after_each(function() vmtrace.configure { max_spans = 0 } end)

  it("lose no money, no tokens and no unpriced call when spans are dropped", function()
    vmtrace.configure { max_spans = 1 }
    local want = { calls = 0, input_tokens = 0, output_tokens = 0, cache_read_tokens = 0,
      cache_write_tokens = 0, cost_usd = 0, unpriced = 0 }
    for _, file in ipairs(files()) do
      local e = EXPECTED[file]
      respond(e.provider, body(file), file)
      want.calls = want.calls + 1
      for _, k in ipairs { "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd" } do
        want[k] = want[k] + e[k]
      end
    end
    local id = vmtrace.start("llm_call", "local")
    vmtrace.llm_usage(id, { model = "local-llama", provider = "local", input_tokens = 7, output_tokens = 3 })
    vmtrace.finish(id)
    want.calls, want.unpriced = want.calls + 1, 1
    want.input_tokens, want.output_tokens = want.input_tokens + 7, want.output_tokens + 3

    assert.equal(1, #vmtrace.spans(), "max_spans kept one span")
    assert.equal(6, vmtrace.dropped())
    local t = vmtrace.llm_totals()
    for k, v in pairs(want) do
      if k == "cost_usd" then assert.near(v, t[k], v * 1e-9) else assert.equal(v, t[k], k) end
    end
    -- by model: the dated ids as the responses name them
    for _, file in ipairs(files()) do
      local e = EXPECTED[file]
      local m = t.by_model[e.model]
      assert.is_table(m, e.model)
      assert.same({ 1, e.input_tokens, e.output_tokens, e.cache_read_tokens, e.cache_write_tokens, 0 },
        { m.calls, m.input_tokens, m.output_tokens, m.cache_read_tokens, m.cache_write_tokens, m.unpriced })
      assert.near(e.cost_usd, m.cost_usd, e.cost_usd * 1e-9)
    end
    assert.same({ 1, 1, 0 }, { t.by_model["local-llama"].calls, t.by_model["local-llama"].unpriced,
      t.by_model["local-llama"].cost_usd })
    -- the profile reads the same totals
    local p = vmtrace.profile().llm
    assert.equal(want.calls, p.calls)
    assert.near(want.cost_usd, p.cost_usd, want.cost_usd * 1e-9)
    assert.matches("unpriced: 1 calls without a price (local-llama)", vmtrace.export("profile"), 1, true)
    -- take_spans changes nothing; enable() and reset() clear them
    vmtrace.take_spans()
    assert.equal(want.calls, vmtrace.llm_totals().calls)
    assert.near(want.cost_usd, vmtrace.llm_totals().cost_usd, want.cost_usd * 1e-9)
    vmtrace.enable()
    assert.same({ 0, 0, 0 }, { vmtrace.llm_totals().calls, vmtrace.llm_totals().cost_usd, vmtrace.llm_totals().unpriced })
    assert.same({}, vmtrace.llm_totals().by_model)
    respond("anthropic", body("anthropic_messages.json"))
    vmtrace.reset()
    assert.equal(0, vmtrace.llm_totals().calls)
  end)

  it("count a span's usage as it is when the span finishes", function()
    local id = vmtrace.start("llm_call", "c")
    vmtrace.llm_response(id, "anthropic", body("anthropic_messages.json"))
    assert.equal(0, vmtrace.llm_totals().calls, "an open span is not counted yet")
    vmtrace.finish(id)
    assert.equal(1, vmtrace.llm_totals().calls)
    assert.equal(472, vmtrace.llm_totals().input_tokens)
  end)
end)

describe("GenAI semantic conventions in OTLP", function()
  before_each(function() vmtrace.enable() end)

  local function str(s) return { stringValue = s } end
  local function int(n) return { intValue = ("%d"):format(n) } end

  it("puts the response's record on each llm_call span under the conventions' names", function()
    local ops = { openai = "chat", anthropic = "chat", google = "generate_content" }
    local otel_provider = { openai = "openai", anthropic = "anthropic", google = "gcp.gemini" }
    for _, file in ipairs(files()) do
      respond(EXPECTED[file].provider, body(file), "plan " .. file)
    end
    local spans = helper.otlp_verified()
    for _, file in ipairs(files()) do
      local e = EXPECTED[file]
      local s = spans["plan " .. file]
      assert.is_table(s, "the script's span name stays the OTLP span name")
      assert.equal(3, s.kind, "CLIENT")
      local a = helper.attr_map(s.attributes)
      assert.same(str(ops[e.provider]), a["gen_ai.operation.name"], file)
      assert.same(str(otel_provider[e.provider]), a["gen_ai.provider.name"], file)
      assert.same(str(e.model), a["gen_ai.request.model"], file)
      assert.same(str(e.model), a["gen_ai.response.model"], file)
      assert.same(str(e.response_id), a["gen_ai.response.id"], file)
      local reasons = {}
      for i, r in ipairs(e.finish_reasons) do reasons[i] = str(r) end
      local got = a["gen_ai.response.finish_reasons"].arrayValue.values or {} -- [] decodes as no values
      assert.same(reasons, got, file)
      -- input includes the cached input, as the conventions say
      assert.same(int(e.input_tokens + e.cache_read_tokens + e.cache_write_tokens), a["gen_ai.usage.input_tokens"], file)
      assert.same(int(e.output_tokens), a["gen_ai.usage.output_tokens"], file)
      assert.same(int(e.cache_read_tokens), a["gen_ai.usage.cache_read.input_tokens"], file)
      assert.same(int(e.cache_write_tokens), a["gen_ai.usage.cache_write.input_tokens"], file)
      assert.same(int(e.cache_write_tokens), a["gen_ai.usage.cache_creation.input_tokens"], file)
      -- vmtrace's own keys are there too
      assert.same(int(e.input_tokens), a.input_tokens, file)
      assert.same(str(e.provider), a.provider, file)
    end
    local a = helper.attr_map(spans["plan anthropic_messages.json"].attributes)
    assert.same(int(472 + 3072 + 1820), a["gen_ai.usage.input_tokens"])
  end)

  it("maps vmtrace's provider names to the well-known values", function()
    for _, p in ipairs { "google", "gemini", "vertex_ai", "openai", "anthropic", "mistral_ai" } do
      local id = vmtrace.start("llm_call", p)
      vmtrace.llm_usage(id, { model = "m", provider = p, input_tokens = 1 })
      vmtrace.finish(id)
    end
    local spans = helper.otlp_verified()
    local function attrs(name) return helper.attr_map(spans[name].attributes) end
    assert.same(str("gcp.gemini"), attrs("google")["gen_ai.provider.name"])
    assert.same(str("gcp.gemini"), attrs("gemini")["gen_ai.provider.name"])
    assert.same(str("generate_content"), attrs("gemini")["gen_ai.operation.name"])
    assert.same(str("gcp.vertex_ai"), attrs("vertex_ai")["gen_ai.provider.name"])
    assert.same(str("generate_content"), attrs("vertex_ai")["gen_ai.operation.name"])
    assert.same(str("openai"), attrs("openai")["gen_ai.provider.name"])
    assert.same(str("chat"), attrs("openai")["gen_ai.operation.name"])
    assert.same(str("mistral_ai"), attrs("mistral_ai")["gen_ai.provider.name"])
  end)

  it("lets a gen_ai key the script sets itself win, without a duplicate", function()
    local id = vmtrace.start("llm_call", "plan")
    vmtrace.set_metadata(id, "gen_ai.request.model", "gpt-4o")
    vmtrace.set_metadata(id, "gen_ai.operation.name", "text_completion")
    vmtrace.llm_response(id, "openai", body("openai_chat.json"))
    vmtrace.finish(id)
    local a = helper.attr_map(helper.otlp_verified().plan.attributes) -- attr_map refuses duplicates
    assert.same(str("gpt-4o"), a["gen_ai.request.model"])
    assert.same(str("gpt-4o-2024-08-06"), a["gen_ai.response.model"])
    assert.same(str("text_completion"), a["gen_ai.operation.name"])
  end)

  it("marks tool_call spans as execute_tool with the tool's name", function()
    vmtrace.finish(vmtrace.start("tool_call", "grep the repo", { metadata = { tool_name = "grep" } }))
    vmtrace.finish(vmtrace.start("tool_call", "read_file"))
    vmtrace.finish(vmtrace.start("fn_call", "helper"))
    local spans = helper.otlp_verified()
    local a = helper.attr_map(spans["grep the repo"].attributes)
    assert.same(str("execute_tool"), a["gen_ai.operation.name"])
    assert.same(str("grep"), a["gen_ai.tool.name"])
    a = helper.attr_map(spans.read_file.attributes)
    assert.same(str("read_file"), a["gen_ai.tool.name"])
    assert.is_nil(helper.attr_map(spans.helper.attributes)["gen_ai.operation.name"])
  end)
end)
