-- examples/cart.lua: a small module that examples/auto.lua requires.
local M = {}

function M.new() return { items = {}, total = 0 } end

function M.add(cart, name, price)
  cart.items[#cart.items + 1] = name
  cart.total = cart.total + price
  return cart
end

function M.checkout(cart)
  if cart.total == 0 then error("empty cart") end
  return ("%d items, %.2f"):format(#cart.items, cart.total)
end

return M
