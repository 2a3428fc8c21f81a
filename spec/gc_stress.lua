-- Loaded with `busted --helper=spec/gc_stress.lua` (make gc-stress): the
-- whole suite under an aggressive garbage collector, to catch span handles,
-- coroutine stacks and sinks used after they were collected.
collectgarbage("generational")
local busted = require "busted"
busted.subscribe({ "test", "end" }, function()
  collectgarbage("collect")
  collectgarbage("collect")
  return nil, true
end)
