--- vmtrace.profile: the run profile as text (vmtrace.export("profile", ...)
-- and `vmtrace profile FILE`). The numbers come from the C core
-- (vmtrace.profile()); this module only lays them out.
-- @module vmtrace.profile
local M = {}

local function ms(x) return ("%.3f"):format(x) end

-- s padded to w columns (string.format's %-Ns refuses strings with NUL).
local function pad(s, w)
  s = tostring(s)
  return #s < w and s .. (" "):rep(w - #s) or s
end

local function money(x) return ("$%.4f"):format(x) end

--- The text of a profile table.
function M.text(p)
  local out = {}
  local function line(fmt, ...) out[#out + 1] = fmt:format(...) end
  line("Run profile: %s", p.trace_id)
  line("wall time %s ms, %d spans, %d dropped", ms(p.wall_ms), p.spans, p.dropped)
  line("")
  line("%-20s %12s %8s %8s", "time by kind", "total ms", "count", "% wall")
  for _, k in ipairs(p.by_kind) do
    line("  %-18s %12s %8d %8.1f", k.kind, ms(k.total_ms), k.count, k.percent)
  end
  line("residual (root time in no child span): %s ms, %.1f%% of wall",
    ms(p.residual_ms), p.residual_percent)
  line("")
  line("top llm calls")
  if #p.top_llm_calls == 0 then line("  (none)") end
  for _, c in ipairs(p.top_llm_calls) do
    line("  %s %10s ms  %s %7d in %7d out%s", pad(c.name, 24), ms(c.duration_ms),
      pad(c.model or "-", 18), c.input_tokens or 0, c.output_tokens or 0,
      c.cost_usd and ("  " .. money(c.cost_usd)) or "")
  end
  line("top tool calls")
  if #p.top_tool_calls == 0 then line("  (none)") end
  for _, c in ipairs(p.top_tool_calls) do
    line("  %s %10s ms", pad(c.name, 24), ms(c.duration_ms))
  end
  line("")
  line("%-20s %12s %16s %16s %12s", "steps", "total ms", "llm ms (calls)", "tool ms (calls)",
    "other ms")
  if #p.steps == 0 then line("  (none)") end
  for _, s in ipairs(p.steps) do
    line("  %s %12s %16s %16s %12s", pad(s.name, 18), ms(s.duration_ms),
      ("%s (%d)"):format(ms(s.llm_ms), s.llm_calls),
      ("%s (%d)"):format(ms(s.tool_ms), s.tool_calls), ms(s.other_ms))
  end
  line("")
  local l = p.llm
  line("llm: %d calls, %d input, %d output, %d cache read, %d cache write tokens, %s",
    l.calls, l.input_tokens, l.output_tokens, l.cache_read_tokens, l.cache_write_tokens,
    money(l.cost_usd))
  local models = {}
  for m in pairs(l.by_model) do models[#models + 1] = m end
  table.sort(models)
  for _, m in ipairs(models) do
    local t = l.by_model[m]
    line("  %s %4d calls %9d in %9d out  %s", pad(m ~= "" and m or "(no model)", 24), t.calls,
      t.input_tokens, t.output_tokens, money(t.cost_usd))
  end
  return table.concat(out, "\n") .. "\n"
end

return M
