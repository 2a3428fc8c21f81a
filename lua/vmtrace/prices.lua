--- vmtrace's default LLM price catalog (data, not code).
-- USD per million tokens: input, output, cache_read (cached input read),
-- cache_write (cache creation). Prices change: check them against the
-- providers' price pages and extend or override them with
-- vmtrace.pricing.set(provider, model, prices) or vmtrace.pricing.load(path).
return {
  as_of = "2025-08-01", -- the date these prices were taken from the providers' published lists
  currency = "USD",
  unit = "per million tokens",
  prices = {
    anthropic = {
      ["claude-opus-4-1"] = { input = 15.00, output = 75.00, cache_read = 1.50, cache_write = 18.75 },
      ["claude-opus-4"] = { input = 15.00, output = 75.00, cache_read = 1.50, cache_write = 18.75 },
      ["claude-sonnet-4"] = { input = 3.00, output = 15.00, cache_read = 0.30, cache_write = 3.75 },
      ["claude-3-7-sonnet"] = { input = 3.00, output = 15.00, cache_read = 0.30, cache_write = 3.75 },
      ["claude-3-5-haiku"] = { input = 0.80, output = 4.00, cache_read = 0.08, cache_write = 1.00 },
    },
    openai = {
      ["gpt-5"] = { input = 1.25, output = 10.00, cache_read = 0.125, cache_write = 0 },
      ["gpt-5-mini"] = { input = 0.25, output = 2.00, cache_read = 0.025, cache_write = 0 },
      ["gpt-4.1"] = { input = 2.00, output = 8.00, cache_read = 0.50, cache_write = 0 },
      ["gpt-4.1-mini"] = { input = 0.40, output = 1.60, cache_read = 0.10, cache_write = 0 },
      ["gpt-4o"] = { input = 2.50, output = 10.00, cache_read = 1.25, cache_write = 0 },
      ["gpt-4o-mini"] = { input = 0.15, output = 0.60, cache_read = 0.075, cache_write = 0 },
      ["o3"] = { input = 2.00, output = 8.00, cache_read = 0.50, cache_write = 0 },
    },
    google = {
      ["gemini-2.5-pro"] = { input = 1.25, output = 10.00, cache_read = 0.31, cache_write = 0 },
      ["gemini-2.5-flash"] = { input = 0.30, output = 2.50, cache_read = 0.075, cache_write = 0 },
    },
  },
}
