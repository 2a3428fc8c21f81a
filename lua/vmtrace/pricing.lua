--- vmtrace.pricing: the catalog that prices LLM calls.
-- Prices are USD per million tokens for input, output, cache_read and
-- cache_write, per provider and model. The default catalog is the data file
-- vmtrace/prices.lua (its `as_of` says when its prices were taken).
-- @module vmtrace.pricing
local M = {}

local catalog = {}   -- provider -> model -> prices
local FIELDS = { "input", "output", "cache_read", "cache_write" }

local function fail(fn, n, msg)
  error(("vmtrace.pricing.%s: bad argument #%d (%s)"):format(fn, n, msg), 3)
end

local function check_prices(fn, n, prices, where)
  if type(prices) ~= "table" then
    fail(fn, n, ("%sprices must be a table, got %s"):format(where, type(prices)))
  end
  local p = {}
  for _, f in ipairs(FIELDS) do
    local v = prices[f] or 0
    if type(v) ~= "number" or v ~= v or v < 0 or v == math.huge then
      fail(fn, n, ("%s%s must be a non-negative number, got %s"):format(where, f, tostring(v)))
    end
    p[f] = v
  end
  return p
end

--- Set the prices of one model: `prices = {input=, output=, cache_read=,
-- cache_write=}` (USD per million tokens; missing fields are 0).
function M.set(provider, model, prices)
  if type(provider) ~= "string" then fail("set", 1, "string expected, got " .. type(provider)) end
  if type(model) ~= "string" then fail("set", 2, "string expected, got " .. type(model)) end
  local p = check_prices("set", 3, prices, "")
  catalog[provider] = catalog[provider] or {}
  catalog[provider][model] = p
end

--- The prices of a model, or nil. With provider nil or "", any provider's.
function M.get(provider, model)
  if provider and provider ~= "" then
    return catalog[provider] and catalog[provider][model]
  end
  for _, models in pairs(catalog) do
    if models[model] then return models[model] end
  end
  return nil
end

--- The cost in USD of `usage` (model, provider and token counts), or nil
-- when the model is unpriced.
function M.cost(usage)
  if type(usage) ~= "table" then fail("cost", 1, "table expected, got " .. type(usage)) end
  local p = M.get(usage.provider, usage.model)
  if not p then return nil end
  return ((usage.input_tokens or 0) * p.input + (usage.output_tokens or 0) * p.output
    + (usage.cache_read_tokens or 0) * p.cache_read
    + (usage.cache_write_tokens or 0) * p.cache_write) / 1e6
end

local function merge(fn, n, data, where)
  if type(data) ~= "table" or type(data.prices) ~= "table" then
    fail(fn, n, where .. "expected an object with a \"prices\" object")
  end
  local staged = {}
  for provider, models in pairs(data.prices) do
    if type(provider) ~= "string" or type(models) ~= "table" then
      fail(fn, n, where .. "prices must map provider names to objects of models")
    end
    for model, prices in pairs(models) do
      if type(model) ~= "string" then fail(fn, n, where .. "model names must be strings") end
      staged[#staged + 1] = { provider, model,
        check_prices(fn, n, prices, ("%s%s/%s: "):format(where, provider, model)) }
    end
  end
  for _, e in ipairs(staged) do   -- all or nothing
    catalog[e[1]] = catalog[e[1]] or {}
    catalog[e[1]][e[2]] = e[3]
  end
  return #staged
end

--- Add the prices of a JSON file `{"as_of": "...", "prices": {provider:
-- {model: {input, output, cache_read, cache_write}}}}` to the catalog.
-- Returns the number of models read, or nil and a message.
function M.load(path)
  if type(path) ~= "string" then fail("load", 1, "string expected, got " .. type(path)) end
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text = f:read("a")
  f:close()
  local data, jerr = require("vmtrace.core").json_decode(text)
  if data == nil then return nil, ("%s: %s"):format(path, jerr) end
  local ok, n = pcall(merge, "load", 1, data, path .. ": ")
  if not ok then return nil, (tostring(n):gsub("^.-vmtrace%.pricing%.load: bad argument #1 %((.*)%)$", "%1")) end
  return n
end

--- Forget every price (then set or load your own).
function M.clear() catalog = {} end

--- The default catalog's date.
M.as_of = nil

--- Restore the default catalog.
function M.defaults()
  catalog = {}
  local data = require "vmtrace.prices"
  merge("defaults", 1, data, "vmtrace/prices.lua: ")
  M.as_of = data.as_of
end

M.defaults()
return M
