--- vmtrace.pricing: the catalog that prices LLM calls.
-- Prices are USD per million tokens for input, output, cache_read and
-- cache_write, per provider and model. The catalog and the cost rule live in
-- the C core (csrc/core/pricing.c), so llm_usage and every export price the
-- same way; the default catalog is the data file vmtrace/prices.lua (its
-- `as_of` says when its prices were taken). A dated or versioned model id
-- takes the price of the longest catalog entry it starts with; an exact
-- entry wins.
-- @module vmtrace.pricing
local core = require "vmtrace.core"

local M = {}

--- Set the prices of one model: `prices = {input=, output=, cache_read=,
-- cache_write=}` (USD per million tokens; missing fields are 0).
function M.set(provider, model, prices)
  core._price_set(provider, model, prices, "pricing.set")
end

--- The prices of a model, or nil; with provider nil or "", any provider's.
-- The second result is the catalog entry that matched (for a dated id, the
-- entry it starts with).
function M.get(provider, model)
  return core._price_get(provider, model)
end

--- The cost in USD of `usage` (model, provider and token counts, or a given
-- cost_usd), or nil when the model is unpriced.
function M.cost(usage)
  return core._cost(usage)
end

local function fail(fn, msg) core._argerror("pricing." .. fn, 1, msg, 2) end

--- Add the prices of a JSON file `{"as_of": "...", "prices": {provider:
-- {model: {input, output, cache_read, cache_write}}}}` to the catalog.
-- Returns the number of models read, or nil and a message. All or nothing.
function M.load(path)
  if type(path) ~= "string" then fail("load", "string expected, got " .. type(path)) end
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text = f:read("a")
  f:close()
  local data, jerr = core.json_decode(text)
  if data == nil then return nil, ("%s: %s"):format(path, jerr) end
  if type(data) ~= "table" or type(data.prices) ~= "table" then
    return nil, path .. ": expected an object with a \"prices\" object"
  end
  local staged = {}
  for provider, models in pairs(data.prices) do
    if type(models) ~= "table" then
      return nil, path .. ": prices must map provider names to objects of models"
    end
    for model, prices in pairs(models) do
      staged[#staged + 1] = { provider, model, prices }
    end
  end
  for _, e in ipairs(staged) do -- all checked first: all or nothing
    local ok, perr = pcall(core._price_set, e[1], e[2], e[3], "pricing.load", true)
    if not ok then
      return nil, ("%s: %s/%s: %s"):format(path, tostring(e[1]), tostring(e[2]),
        (tostring(perr):gsub("^.-bad argument #%d+ %((.*)%)$", "%1")))
    end
  end
  for _, e in ipairs(staged) do core._price_set(e[1], e[2], e[3], "pricing.load") end
  return #staged
end

--- Forget every price (then set or load your own).
function M.clear() core._price_clear() end

--- The default catalog's date.
M.as_of = nil

--- Restore the default catalog.
function M.defaults()
  core._price_clear()
  local data = require "vmtrace.prices"
  for provider, models in pairs(data.prices) do
    for model, p in pairs(models) do
      core._price_set(provider, model, { input = p.input, output = p.output,
        cache_read = p.cache_read, cache_write = p.cache_write }, "pricing.defaults")
    end
  end
  M.as_of = data.as_of
end

M.defaults()
return M
