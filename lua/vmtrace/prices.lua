--- vmtrace's default LLM price catalog (data, not code).
--
-- Units: USD per million tokens, standard (synchronous, non-batch, global)
-- tier. Four prices per model:
--   input        uncached input tokens
--   cache_read   input tokens read from the provider's prompt/context cache
--   cache_write  input tokens written to the cache (Anthropic 5-minute write;
--                OpenAI and Google: 0, see below)
--   output       output tokens, reasoning/thinking tokens included
--
-- How these prices were checked (2026-12-02, from stored copies of public
-- pages; no live page was fetched):
--   * Anthropic: the "Pricing" page of the Claude docs, three stored versions
--     (docs.anthropic.com/en/docs/about-claude/pricing, whose newest model is
--     Opus 4.1; platform.claude.com/docs/en/docs/about-claude/pricing, newest
--     Opus 4.6; platform.claude.com/docs/en/about-claude/pricing, newest
--     Fable 5.1). Every price below is read from the provider's own table.
--     None of the three copies carries a date.
--   * OpenAI: the per-model pages of developers.openai.com (API docs, "Text
--     tokens" table) where a stored copy exists (gpt-5-nano, gpt-5-mini,
--     gpt-4.1-nano; gpt-5 input via the gpt-5-codex and gpt-5.1 pages). For the
--     other models no stored OpenAI page was found; their prices come from two
--     independent transcriptions of platform.openai.com/docs/pricing kept in
--     public repositories (pydantic/genai-prices prices/providers/openai.yml,
--     prices_checked 2025-07-04 .. 2025-11-13, and the hex package
--     openai_responses 0.4.1 lib/responses/pricing.ex, "last updated on
--     2025-06-03") and agree with each other. Their `source` says so.
--   * Google: ai.google.dev/gemini-api/docs/pricing itself is not in the
--     stored corpus. Prices come from transcriptions of that page: a snapshot
--     dated 2025-10-08 (alecaifactory/salfagpt GEMINI_API_PRICING_REFERENCE.md),
--     api-evangelist/gemini plans/gemini-plans-pricing.yml ("every price_text
--     was found verbatim", read 2026-09-20), eidast/ai-models-stats
--     docs/GOOGLE_PRICING.md and dalisys/landingAi api-pricing.md.
--   `as_of` is the date of the newest dated source used (2026-09-20); most
--   provider pages carry no date, see each entry's `source`.
--
-- Conventions per provider:
--   * Anthropic cache_write is the 5-minute cache write price (1.25x input);
--     the 1-hour write price (2x input) is given in a comment. A response
--     reports the split in usage.cache_creation.ephemeral_{5m,1h}_input_tokens;
--     pricing all writes at the 5-minute rate under-counts 1-hour writes.
--   * OpenAI charges no cache write fee for the models below ("Cache writes
--     have no additional fee on models before the GPT-5.6 family",
--     developers.openai.com/api/docs/guides/prompt-caching), so cache_write = 0.
--   * Gemini cache_read is the "Context caching price" (per million cached
--     tokens used in a request). Explicit caches also pay a storage price per
--     million tokens per hour, which is not per call and is not in this
--     catalog; it is noted in a comment. Where a model has tiers by prompt
--     length (Gemini 2.5 Pro: <= 200k vs > 200k tokens), the <= 200k tier is
--     used and the > 200k prices are noted. Text/image/video input prices are
--     used; audio input is dearer (noted).
--   * An entry with `unverified = true` could not be confirmed from a stored
--     source for every price; the comment says which.
--
-- Lookup rule (how a model id as the API returns it finds its entry):
--   1. An entry whose id equals the model id wins (so "gpt-4o-2024-05-13",
--      which has its own price, is not priced as "gpt-4o").
--   2. Otherwise the longest catalog id that the model id starts with, where
--      the character after the prefix is "-" or "@" or there is none:
--      "claude-sonnet-4-20250514" -> "claude-sonnet-4",
--      "claude-sonnet-4-5-20250929" -> "claude-sonnet-4-5" (longer than
--      "claude-sonnet-4"), "gpt-4o-mini-2024-07-18" -> "gpt-4o-mini" (not
--      "gpt-4o"), "gpt-4o-2024-08-06" -> "gpt-4o", "gemini-2.5-flash-lite-
--      preview-09-2025" -> "gemini-2.5-flash-lite". "gpt-4.1" does not take
--      "gpt-4.1x", and "gpt-5.1" does not take "gpt-5" (the next character is
--      ".").
--   Entries such as claude-opus-4-5..4-8, o1-mini, o1-pro, o3-pro and
--   gpt-5-pro exist so that those ids do not fall back to a shorter prefix
--   with a different price (claude-opus-4-6 is $5, claude-opus-4 is $15).
--
-- Prices change: extend or override them with vmtrace.pricing.set(provider,
-- model, prices) or vmtrace.pricing.load(path). Fields other than the four
-- prices (`source`, `unverified`) are documentation and are not read.
local A_OLD = "https://docs.anthropic.com/en/docs/about-claude/pricing (Anthropic docs 'Pricing', model table; stored copy, newest model Opus 4.1, undated)"
local A_MID = "https://platform.claude.com/docs/en/docs/about-claude/pricing (Claude docs 'Pricing', model table; stored copy, newest model Opus 4.6, undated)"
local A_NEW = "https://platform.claude.com/docs/en/about-claude/pricing (Claude docs 'Pricing', 'Model pricing' table; stored copy, newest model Fable 5.1, undated)"
local GP = "pydantic/genai-prices prices/providers/openai.yml (transcribes https://platform.openai.com/docs/pricing"
local HEX = "hex openai_responses 0.4.1 lib/responses/pricing.ex (transcribes https://platform.openai.com/docs/pricing, 'last updated on 2025-06-03')"
local G_1008 = "alecaifactory/salfagpt GEMINI_API_PRICING_REFERENCE.md (transcribes https://ai.google.dev/gemini-api/docs/pricing, 'Snapshot Date: 2025-10-08')"
local G_EV = "api-evangelist/gemini plans/gemini-plans-pricing.yml (verbatim from https://ai.google.dev/gemini-api/docs/pricing, read 2026-09-20)"
local G_EID = "eidast/ai-models-stats docs/GOOGLE_PRICING.md (transcribes https://ai.google.dev/gemini-api/docs/pricing, undated, lists Gemini 3 Flash Preview)"
local G_DAL = "dalisys/landingAi api-pricing.md (Gemini pricing rows, undated, lists Gemini 3 Pro Preview)"

return {
  as_of = "2026-09-20",
  currency = "USD",
  unit = "per million tokens",
  prices = {
    anthropic = {
      -- Claude 4.5+ Opus: $5 tier. 1h cache write $10.
      ["claude-opus-4-8"] = { input = 5.00, output = 25.00, cache_read = 0.50, cache_write = 6.25,
        source = A_NEW },
      ["claude-opus-4-7"] = { input = 5.00, output = 25.00, cache_read = 0.50, cache_write = 6.25,
        source = A_NEW .. "; also api-evangelist/anthropic plans/anthropic-plans-pricing.yml (2026-05-22)" },
      ["claude-opus-4-6"] = { input = 5.00, output = 25.00, cache_read = 0.50, cache_write = 6.25,
        source = A_MID .. "; " .. A_NEW },
      ["claude-opus-4-5"] = { input = 5.00, output = 25.00, cache_read = 0.50, cache_write = 6.25,
        source = A_MID .. "; " .. A_NEW },
      -- Opus 4.1 and 4: 1h cache write $30. The newest page marks both
      -- "retired, except on Bedrock and Google Cloud" / "except on Google Cloud".
      ["claude-opus-4-1"] = { input = 15.00, output = 75.00, cache_read = 1.50, cache_write = 18.75,
        source = A_OLD .. "; " .. A_MID .. "; " .. A_NEW },
      ["claude-opus-4"] = { input = 15.00, output = 75.00, cache_read = 1.50, cache_write = 18.75,
        source = A_OLD .. "; " .. A_MID .. "; " .. A_NEW },
      -- Sonnet: 1h cache write $6. Sonnet 4/4.5/4.6 with the 1M context
      -- window: a request over 200K input tokens costs $6 input / $22.50
      -- output (A_OLD "Long context pricing"); not modelled here.
      ["claude-sonnet-4-6"] = { input = 3.00, output = 15.00, cache_read = 0.30, cache_write = 3.75,
        source = A_MID },
      ["claude-sonnet-4-5"] = { input = 3.00, output = 15.00, cache_read = 0.30, cache_write = 3.75,
        source = A_MID },
      ["claude-sonnet-4"] = { input = 3.00, output = 15.00, cache_read = 0.30, cache_write = 3.75,
        source = A_OLD .. "; " .. A_MID },
      ["claude-3-7-sonnet"] = { input = 3.00, output = 15.00, cache_read = 0.30, cache_write = 3.75,
        source = A_OLD .. "; " .. A_MID .. " ('Claude Sonnet 3.7 (deprecated)')" },
      ["claude-3-5-sonnet"] = { input = 3.00, output = 15.00, cache_read = 0.30, cache_write = 3.75,
        source = A_OLD .. " ('Claude Sonnet 3.5 (deprecated)')" },
      -- Haiku 4.5: 1h cache write $2.
      ["claude-haiku-4-5"] = { input = 1.00, output = 5.00, cache_read = 0.10, cache_write = 1.25,
        source = A_MID },
      -- Haiku 3.5: 1h cache write $1.6.
      ["claude-3-5-haiku"] = { input = 0.80, output = 4.00, cache_read = 0.08, cache_write = 1.00,
        source = A_OLD .. "; " .. A_MID },
      -- Haiku 3: 1h cache write $0.50.
      ["claude-3-haiku"] = { input = 0.25, output = 1.25, cache_read = 0.03, cache_write = 0.30,
        source = A_OLD .. "; " .. A_MID },
      -- Opus 3: 1h cache write $30.
      ["claude-3-opus"] = { input = 15.00, output = 75.00, cache_read = 1.50, cache_write = 18.75,
        source = A_OLD .. "; " .. A_MID .. " ('Claude Opus 3 (deprecated)')" },
    },

    openai = {
      ["gpt-5"] = { input = 1.25, output = 10.00, cache_read = 0.125, cache_write = 0,
        source = "input $1.25: https://developers.openai.com/api/docs/models/gpt-5-codex and "
          .. "https://developers.openai.com/zh-Hans/api/docs/models/gpt-5.1 ('Quick comparison', GPT-5 $1.25; "
          .. "GPT-5-Codex, 'a version of GPT-5', $1.25 / cached $0.125 / $10.00); cached and output: "
          .. GP .. ", gpt-5 prices_checked 2025-11-13)" },
      ["gpt-5-mini"] = { input = 0.25, output = 2.00, cache_read = 0.025, cache_write = 0,
        source = "https://developers.openai.com/ko-KR/api/docs/models/gpt-5-mini (OpenAI model page, "
          .. "'Text tokens', undated); " .. GP .. ", prices_checked 2025-11-13)" },
      ["gpt-5-nano"] = { input = 0.05, output = 0.40, cache_read = 0.005, cache_write = 0,
        source = "https://developers.openai.com/api/docs/models/gpt-5-nano.md (OpenAI model page, "
          .. "'Text tokens', undated); " .. GP .. ", prices_checked 2025-11-13)" },
      -- No cached-input price is listed for gpt-5-pro; cache_read left at 0.
      ["gpt-5-pro"] = { input = 15.00, output = 120.00, cache_write = 0,
        source = GP .. ", prices_checked 2025-11-13); deploybase.ai 'OpenAI pricing' (March 2026)" },
      ["gpt-4.1"] = { input = 2.00, output = 8.00, cache_read = 0.50, cache_write = 0,
        source = GP .. ", prices_checked 2025-07-04); " .. HEX },
      ["gpt-4.1-mini"] = { input = 0.40, output = 1.60, cache_read = 0.10, cache_write = 0,
        source = GP .. ", prices_checked 2025-07-04); " .. HEX },
      ["gpt-4.1-nano"] = { input = 0.10, output = 0.40, cache_read = 0.025, cache_write = 0,
        source = "https://developers.openai.com/ko-KR/api/docs/models/gpt-4.1-nano (OpenAI model page, "
          .. "'Text tokens', undated); " .. GP .. ", prices_checked 2025-07-04); " .. HEX },
      ["gpt-4o"] = { input = 2.50, output = 10.00, cache_read = 1.25, cache_write = 0,
        source = GP .. ", prices_checked 2025-07-04); " .. HEX .. " (gpt-4o-2024-08-06, gpt-4o-2024-11-20)" },
      -- The first GPT-4o snapshot keeps its launch price and has no prompt
      -- caching ("gpt-4o (excludes gpt-4o-2024-05-13)", OpenAI prompt caching
      -- guide as quoted by portkey.ai/docs). Exact id, so it wins over "gpt-4o".
      -- pydantic/genai-prices prices it as gpt-4o; the two sources here disagree with it.
      ["gpt-4o-2024-05-13"] = { input = 5.00, output = 15.00, cache_write = 0,
        source = HEX .. "; https://openrouter.ai/openai/gpt-4o-2024-05-13 ($5/M input, $15/M output)" },
      ["gpt-4o-mini"] = { input = 0.15, output = 0.60, cache_read = 0.075, cache_write = 0,
        source = GP .. ", prices_checked 2025-07-04); CommitBrief/commitbrief wiki 'Provider OpenAI' "
          .. "(rates from openai.com/api/pricing, May 2026)" },
      -- o3 was cut from $10 / $2.50 / $40 to these prices on 2025-06-10.
      ["o3"] = { input = 2.00, output = 8.00, cache_read = 0.50, cache_write = 0,
        source = GP .. ", prices from 2025-06-10, prices_checked 2025-07-12); deploybase.ai 'OpenAI pricing' (March 2026)" },
      ["o3-pro"] = { input = 20.00, output = 80.00, cache_write = 0,
        source = GP .. "); https://openrouter.ai/openai/o3-pro ($20/M input, $80/M output)" },
      ["o3-mini"] = { input = 1.10, output = 4.40, cache_read = 0.55, cache_write = 0,
        source = GP .. ", prices_checked 2025-07-04); appatalks/chatgpt-html issue #82 (OpenAI price table: o3-mini $1.10 / $0.55 / $4.40)" },
      ["o4-mini"] = { input = 1.10, output = 4.40, cache_read = 0.275, cache_write = 0,
        source = GP .. ", prices_checked 2025-07-04); https://www.helicone.ai/model/o4-mini (provider openai: cache read $0.275)" },
      ["o1"] = { input = 15.00, output = 60.00, cache_read = 7.50, cache_write = 0,
        source = GP .. ", prices_checked 2025-07-04); docs.rs openai-models 0.1.1 (from openai.com/api/pricing: $15 / cached $7.5 / $60)" },
      ["o1-mini"] = { input = 1.10, output = 4.40, cache_read = 0.55, cache_write = 0,
        source = GP .. ", prices_checked 2025-07-04)" },
      ["o1-pro"] = { input = 150.00, output = 600.00, cache_write = 0,
        source = GP .. ", prices_checked 2025-07-04); https://openrouter.ai/openai/o1-pro ($150/M input, $600/M output)" },
    },

    google = {
      -- Tiered by prompt length; this is the <= 200k tier. > 200k: input
      -- $2.50, context caching $0.25, output $15.00. Context cache storage:
      -- $4.50 per million tokens per hour.
      ["gemini-2.5-pro"] = { input = 1.25, output = 10.00, cache_read = 0.125, cache_write = 0,
        source = G_1008 .. "; " .. G_EV .. " (input $1.25 <= 200k, $2.50 > 200k); " .. G_EID
          .. "; discuss.ai.google.dev 'Question about Gemini API caching pricing' (quotes $0.125 / $0.25 / $4.50 storage)" },
      -- Audio input $1.00, audio context caching $0.10. Storage $1.00 per
      -- million tokens per hour. Output price includes thinking tokens.
      ["gemini-2.5-flash"] = { input = 0.30, output = 2.50, cache_read = 0.03, cache_write = 0,
        source = G_1008 .. "; " .. G_EV .. " (input $0.30 text/image/video, $1.00 audio); " .. G_EID .. "; " .. G_DAL },
      -- Audio input $0.30, audio context caching $0.03. Storage $1.00 per
      -- million tokens per hour.
      ["gemini-2.5-flash-lite"] = { input = 0.10, output = 0.40, cache_read = 0.01, cache_write = 0,
        source = G_DAL .. "; " .. G_EID .. "; " .. G_EV .. " (output $0.40)" },
      -- Audio input $0.70. Context caching $0.025 (audio $0.175), storage
      -- $1.00 per million tokens per hour, per an older transcription; the
      -- newer G_EID table lists no caching price for 2.0 Flash. Deprecated
      -- (shutdown 2026-06-01 per morphllm.com/gemini-api-pricing).
      ["gemini-2.0-flash"] = { input = 0.10, output = 0.40, cache_read = 0.025, cache_write = 0,
        source = "clannorg/CLANNAI bball/4_gemini_info/gemini_pricing_reference.md (Google AI Studio pricing, undated, mid-2025); "
          .. G_EID .. " (input $0.10, output $0.40, no cache price); "
          .. "pydantic/genai-prices prices/providers/google.yml ($0.10 / $0.40)" },
      -- No context caching price is published for 2.0 Flash-Lite; cache_read
      -- is left at 0 (a call should report no cached tokens).
      ["gemini-2.0-flash-lite"] = { input = 0.075, output = 0.30, cache_write = 0,
        source = G_EID .. "; clannorg/CLANNAI gemini_pricing_reference.md; pydantic/genai-prices prices/providers/google.yml" },
    },
  },
}
