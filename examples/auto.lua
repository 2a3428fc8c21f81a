-- examples/auto.lua: an ordinary script that knows nothing of vmtrace.
-- `make demo` runs it under tracing, unchanged:
--   bin/vmtrace run --calls --summary examples/auto.lua
package.path = (arg and arg[0] or ""):gsub("[^/]*$", "") .. "?.lua;" .. package.path
local cart = require "cart"

local PRICES = { apple = 0.5, bread = 2.25, cheese = 6.0 }

local function parse(line)
  local items = {}
  for word in line:gmatch("%a+") do items[#items + 1] = word end
  return items
end

local function think(ms) -- stands for real work
  local t = os.clock()
  while (os.clock() - t) * 1000 < ms do end
end

-- a producer coroutine hands out the items one by one
local function producer(items)
  return coroutine.wrap(function()
    for _, item in ipairs(items) do
      think(2)
      coroutine.yield(item)
    end
  end)
end

local function shop(line)
  local basket = cart.new()
  for item in producer(parse(line)) do
    cart.add(basket, item, PRICES[item] or 1)
  end
  local receipt = cart.checkout(basket)
  return receipt
end

print(shop(arg[1] or "apple bread cheese apple"))
local ok, err = pcall(shop, "")
print("empty order:", ok, err)
