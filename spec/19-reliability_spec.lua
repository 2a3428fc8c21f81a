-- No silent loss, bounded resources (issue 10): memory that stays flat,
-- reading that stays linear and bounded, spans that survive os.exit, a full
-- disk and a torn line, temporary files that are safe and recognisable.
-- Heavy cases run in child processes, so their memory is measured alone and
-- a regression that hangs fails (timeout) instead of stopping the run.

local vmtrace = require "vmtrace"
local helper = require "spec.helper"

local q = helper.shq
local ROOT = helper.ROOT

local TMP
local n_tmp = 0
local function tmp(name)
  n_tmp = n_tmp + 1
  return ("%s/%d-%s"):format(TMP, n_tmp, name or "f")
end

-- Called first in a describe: its tests get a fresh temporary directory
-- (TMP, where tmp() names files), removed after them.
local function with_tmp()
  lazy_setup(function()
    local _, out = helper.run("mktemp -d /tmp/vmtrace-reliability.XXXXXX")
    TMP = out:gsub("%s+$", "")
  end)
  lazy_teardown(function()
    if TMP and TMP:match("^/tmp/vmtrace%-reliability%.") then os.execute("rm -rf " .. q(TMP)) end
  end)
end

-- Run a Lua script in a child lua5.4 (the checkout's module), with a shell
-- prefix (ulimit, trap) and a timeout: {code, out, err, report}.
local function child(source, opts)
  opts = opts or {}
  local script, out, err = tmp("child.lua"), tmp("child.out"), tmp("child.err")
  helper.write(script, "local vmtrace = require 'vmtrace'\n" .. source)
  local cmd = ("%s cd %s && timeout -k 5 %d env LUA_PATH=%s LUA_CPATH=%s lua5.4 %s %s >%s 2>%s")
    :format(opts.prefix or "", q(ROOT), opts.timeout or 120, q(package.path), q(package.cpath),
      q(script), opts.args or "", q(out), q(err))
  local _, _, code = os.execute("sh -c " .. q(cmd))
  local res = { code = code, out = helper.try_read(out) or "", err = helper.try_read(err) or "" }
  res.report = {}
  for k, v in res.out:gmatch("([%w_]+)=([^\n]*)") do res.report[k] = v end
  return res
end

local function ok_child(res)
  assert.equal(0, res.code, ("child failed (%s)\nout: %s\nerr: %s"):format(res.code, res.out, res.err))
  return res.report
end

-- The resident set of the running process, in kB (in children).
local RSS = [[
local function rss()
  for l in io.lines("/proc/self/status") do
    local kb = l:match("^VmRSS:%s+(%d+)")
    if kb then return tonumber(kb) end
  end
end
local function peak()
  for l in io.lines("/proc/self/status") do
    local kb = l:match("^VmHWM:%s+(%d+)")
    if kb then return tonumber(kb) end
  end
end
]]

describe("bounded memory", function()
  with_tmp()

  it("names go with the last span that used them: take_spans, max_spans, reset, enable", function()
    vmtrace.enable()
    local base = vmtrace.stats()
    vmtrace.configure { max_spans = 100 }
    for round = 1, 3 do
      for i = 1, 20000 do vmtrace.finish(vmtrace.start("fn_call", ("request-%d-%d"):format(round, i))) end
      local st = vmtrace.stats()
      assert.is_true(st.names <= 100 + 64 + base.names, "names held under max_spans: " .. st.names)
      vmtrace.take_spans()
      vmtrace.reset()
    end
    vmtrace.configure { max_spans = 0 }
    for i = 1, 5000 do vmtrace.finish(vmtrace.start("fn_call", "x" .. i)) end
    assert.is_true(vmtrace.stats().names >= 5000)
    vmtrace.enable() -- turning on resets: the names go with the spans
    local st = vmtrace.stats()
    assert.is_true(st.names <= 64 + base.names, "names after enable(): " .. st.names)
    assert.is_true(st.name_bytes < 64 * 32, "name bytes after enable(): " .. st.name_bytes)
  end)

  it("a long run of distinct names under max_spans keeps flat memory (5 rounds of 300,000)", function()
    local r = ok_child(child(RSS .. [[
vmtrace.enable()
vmtrace.configure { max_spans = 1000 }
local after = {}
for round = 1, 5 do
  for i = 1, 300000 do vmtrace.finish(vmtrace.start("fn_call", "request-" .. round .. "-" .. i)) end
  vmtrace.take_spans()
  vmtrace.reset()
  collectgarbage() collectgarbage()
  after[round] = rss()
end
print("first=" .. after[1] .. "\nlast=" .. after[5] .. "\nnames=" .. vmtrace.stats().names)
]], { timeout = 300 }))
    local grew = tonumber(r.last) - tonumber(r.first)
    if helper.MEASURES_MEMORY then
      assert.is_true(grew < 8 * 1024, ("RSS grew %d kB from round 1 to 5"):format(grew))
    end
    assert.is_true(tonumber(r.names) <= 64, r.names)
  end)
end)

describe("bounded memory with big metadata", function()
  with_tmp()

  it("under max_spans memory follows the spans kept: 1,500 spans of 1 MiB each, 10 kept", function()
    -- big metadata lived in the span's chunk (4,096 spans) until all of it
    -- went: 1.5 GB here; now each span's big regions go with the span
    local r = ok_child(child(RSS .. [[
vmtrace.enable()
vmtrace.configure { max_spans = 10 }
local big = ("x"):rep(1 << 20)
local before = rss()
for i = 1, 1500 do
  local id = vmtrace.start("fn_call", "s")
  vmtrace.set_metadata(id, "blob", big)
  vmtrace.record_event(id, "e", { blob = big })
  vmtrace.finish(id)
end
collectgarbage() collectgarbage()
local kept = vmtrace.spans()
print("grew=" .. (rss() - before) .. "\ndropped=" .. vmtrace.dropped() .. "\nkept=" .. #kept ..
  "\nblob=" .. #kept[10].metadata.blob .. "\nevent=" .. #kept[10].events[1].attributes.blob)
]], { timeout = 120 }))
    assert.same({ "1490", "10", tostring(1 << 20), tostring(1 << 20) },
      { r.dropped, r.kept, r.blob, r.event })
    if helper.MEASURES_MEMORY then
      assert.is_true(tonumber(r.grew) < 100 * 1024, "RSS grew " .. r.grew .. " kB")
    end
  end)
end)

describe("reading files back", function()
  with_tmp()

  local HEADER = '{"type":"trace","trace_id":"trace_0190d6a4-7c55-7b38-8e8a-3f1c2d4e5f60",'
    .. '"otel_salt":"0123456789abcdef","version":"0.2.0","start_unix_ns":1700000000000000000}\n'
  local function span(id, dur)
    return ('{"trace_id":"trace_0190d6a4-7c55-7b38-8e8a-3f1c2d4e5f60","span_id":%d,"kind":"fn_call",'
      .. '"name":"s%d","start_ns":%d,"start_unix_ns":%d%s,"track":0}'):format(id, id, id * 1000,
        1700000000000000000 + id * 1000, dur and (',"duration_ns":%d'):format(dur) or "")
  end

  it("is linear in the spans open at once: 100,000 starts then 100,000 ends", function()
    local path = tmp("open.ndjson")
    local f = assert(io.open(path, "wb"))
    f:write(HEADER)
    for id = 1, 100000 do f:write('{"type":"start","span":', span(id), "}\n") end
    for id = 100000, 1, -1 do f:write('{"type":"end","span":', span(id, 5000), "}\n") end
    f:close()
    local r = ok_child(child(([[
local t = os.clock()
local n = assert(vmtrace.load(%q))
print("n=" .. n .. "\nsecs=" .. (os.clock() - t))
]]):format(path), { timeout = 60 }))
    assert.equal("100000", r.n)
    assert.is_true(tonumber(r.secs) < helper.time_limit(2), "reading took " .. r.secs .. " s")
  end)

  it("takes memory for the spans it holds, not for the range of their ids", function()
    local sparse, huge = tmp("sparse.json"), tmp("huge.json")
    local f = assert(io.open(sparse, "wb"))
    f:write("[\n")
    for i = 1, 3000 do
      f:write(('{"span_id":%d,"kind":"fn_call","name":"s","start_unix_ns":%d,"duration_ns":1}%s\n')
        :format(i * 4096, 1700000000000000000 + i, i < 3000 and "," or ""))
    end
    f:write("]\n")
    f:close()
    helper.write(huge, ('[{"span_id":%d,"kind":"pipeline","name":"far","start_unix_ns":1,"duration_ns":1}]')
      :format(1 << 36))
    local r = ok_child(child(RSS .. ([[
local before = rss()
local n1, info1 = assert(vmtrace.load(%q))
local n2, info2 = assert(vmtrace.load(%q))
print("n1=" .. n1 .. "\nn2=" .. n2 .. "\nre1=" .. tostring(info1.renumbered) ..
  "\nre2=" .. tostring(info2.renumbered) .. "\ngrew=" .. (peak() - before))
]]):format(sparse, huge), { prefix = helper.MEASURES_MEMORY and "ulimit -v 600000;" or "" }))
    assert.same({ "3000", "1", "true", "true" }, { r.n1, r.n2, r.re1, r.re2 })
    if helper.MEASURES_MEMORY then
      assert.is_true(tonumber(r.grew) < 64 * 1024, "peak RSS grew " .. r.grew .. " kB")
    end
  end)

  it("keeps the names, parents and links of renumbered spans", function()
    local path = tmp("sparse2.json")
    local T = "trace_0190d6a4-7c55-7b38-8e8a-3f1c2d4e5f60"
    local root, kid = 1 << 30, (1 << 30) + (1 << 20) -- ids a million apart, past a billion
    helper.write(path, ("[\n"
      .. '{"trace_id":"%s","span_id":%d,"parent_id":%d,"kind":"fn_call","name":"child","start_unix_ns":2,"duration_ns":1,'
      .. '"links":[{"trace_id":"%s","span_id":"%d"}]},\n'
      .. '{"trace_id":"%s","span_id":%d,"kind":"pipeline","name":"root","start_unix_ns":1,"duration_ns":5}\n]')
      :format(T, kid, root, T, root, T, root))
    vmtrace.enable()
    local n, info = vmtrace.load(path)
    assert.equal(2, n)
    assert.is_true(info.renumbered)
    local by = {}
    for _, s in ipairs(vmtrace.spans()) do by[s.name] = s end
    assert.equal(by.root.span_id, by.child.parent_id)
    assert.equal(tostring(by.root.span_id), by.child.links[1].span_id)
    assert.matches("pipeline root 0ms\n  fn_call child 0ms", vmtrace.summary(), 1, true)
  end)

  it("refuses /dev/zero at once instead of reading it until memory runs out", function()
    local r = child([[
local n, err = vmtrace.load("/dev/zero")
print("n=" .. tostring(n) .. "\nerr=" .. tostring(err))
]], { timeout = 20, prefix = helper.MEASURES_MEMORY and "ulimit -v 400000;" or "" })
    assert.equal(0, r.code, r.err)
    assert.equal("nil", r.report.n)
    assert.matches("^/dev/zero: line 1: ", r.report.err)
  end)

  it("reads a large stream in a bounded window: peak memory about the spans it keeps", function()
    local path = tmp("big.ndjson")
    local f = assert(io.open(path, "wb"))
    f:write(HEADER)
    local pad = ("x"):rep(400)
    for id = 1, 60000 do
      local s = span(id, 1000):gsub("}$", (',"metadata":{"pad":"%s"}}'):format(pad))
      f:write('{"type":"end","span":', s, "}\n")
    end
    f:close()
    local size = #helper.read(path)
    local r = ok_child(child(RSS .. ([[
collectgarbage() collectgarbage()
local before = rss()
local n = assert(vmtrace.load(%q))
print("n=" .. n .. "\ngrew=" .. (peak() - before))
]]):format(path)))
    assert.equal("60000", r.n)
    -- the spans themselves stay in memory; the input does not (it used to
    -- be read whole, then parsed: 2.25 times its size)
    local grew = tonumber(r.grew) * 1024
    if helper.MEASURES_MEMORY then
      assert.is_true(grew < 1.5 * size, ("peak grew %d bytes for a %d-byte file"):format(grew, size))
    end
  end)
end)

describe("reading spans while finalizers run", function()
  with_tmp()

  -- A span handle dropped unclosed is finished by its __gc, which under
  -- max_spans evicts the oldest span: while spans(), take_spans() or a sink's
  -- event table were being built (and collecting garbage), that freed the
  -- span being copied (a crash, found with big metadata in its own block).
  local PRELUDE = [[
vmtrace.enable()
vmtrace.configure { max_spans = 1 }
local keep = {}
for i = 1, 20000 do keep[i] = { i } end -- a live heap: a collection takes a while
local function armed()
  collectgarbage("collect")
  collectgarbage("stop")
  do local _ = vmtrace.span("fn_call", "dropped-unclosed") end -- its __gc is pending
  local a = vmtrace.start("fn_call", "A")
  for i = 1, 2000 do vmtrace.set_metadata(a, ("key%05d"):format(i), ("v"):rep(20)) end
  return a
end
local function storm()
  collectgarbage("incremental", 0, 100, 0)
  collectgarbage("restart")
end
local function check(t, where)
  local n = 0
  for k, v in pairs(t.metadata) do
    if k ~= "duration_ms" then -- (a sink's end event carries it)
      n = n + 1
      assert(v == ("v"):rep(20), where .. ": bad value at " .. k)
    end
  end
  assert(n == 2000, where .. ": " .. n .. " keys")
end
]]

  it("spans(), take_spans() and sinks copy what they read, whatever a finalizer finishes", function()
    local r = ok_child(child(PRELUDE .. [[
vmtrace.finish(armed())
storm()
local spans = vmtrace.spans()
check(spans[1], "spans")
collectgarbage("collect")
-- take_spans: a span a finalizer finishes meanwhile is taken or kept, never lost
vmtrace.configure { max_spans = 0 }
vmtrace.take_spans()
vmtrace.finish(armed())
storm()
local taken = vmtrace.take_spans()
check(taken[1], "take_spans")
collectgarbage("collect")
local names = {}
for _, s in ipairs(taken) do names[#names + 1] = s.name end
for _, s in ipairs(vmtrace.spans()) do names[#names + 1] = s.name end
table.sort(names)
-- sinks: the event table of A is built while garbage is collected
vmtrace.configure { max_spans = 1 }
local got
vmtrace.add_sink { on_end = function(ev) if ev.name == "A" then got = ev end end }
local a = armed()
storm()
vmtrace.finish(a)
check(got, "sink")
print("spans=" .. #spans .. "\nnames=" .. table.concat(names, ","))
]]))
    assert.equal("1", r.spans)
    assert.equal("A,dropped-unclosed", r.names)
  end)
end)

describe("spans that are not lost", function()
  with_tmp()

  it("a flush = false stream has its tail at os.exit, and the exit status stays", function()
    local path = tmp("exit.ndjson")
    local r = child(([[
vmtrace.enable()
assert(vmtrace.stream(%q, { flush = false }))
for i = 1, 100 do vmtrace.finish(vmtrace.start("fn_call", "s" .. i)) end
os.exit(3)
]]):format(path))
    assert.equal(3, r.code, r.err)
    vmtrace.enable()
    assert.equal(100, (vmtrace.load(path)))
  end)

  it("a stream that cannot write says so at once, counts what it loses and resumes", function()
    local path = tmp("full.ndjson")
    -- a file-size limit stands in for a full disk (SIGXFSZ ignored: EFBIG);
    -- truncating the file gives the room back
    local r = child(([[
assert(vmtrace.stream(%q, { append = true }))
vmtrace.enable()
for i = 1, 400 do vmtrace.finish(vmtrace.start("fn_call", "a" .. i)) end
local st = vmtrace.stream_status()
print("failing1=" .. tostring(st.failing) .. "\nlost1=" .. st.lost_lines .. "\nerror=" .. tostring(st.error))
print("stats_error=" .. tostring(vmtrace.stats().stream_error))
io.open(%q, "w"):close() -- room again
for i = 1, 10 do vmtrace.finish(vmtrace.start("fn_call", "b" .. i)) end
st = vmtrace.stream_status()
print("failing2=" .. tostring(st.failing) .. "\nlost2=" .. st.lost_lines)
local ok, msg = vmtrace.stream(nil)
print("stop=" .. tostring(ok) .. "\nmsg=" .. tostring(msg))
]]):format(path, path), { prefix = "trap '' XFSZ; ulimit -f 64;" })
    assert.equal(0, r.code, r.err)
    local rp = r.report
    assert.equal("true", rp.failing1)
    assert.is_true(tonumber(rp.lost1) > 0)
    assert.matches("File too large", rp.error, 1, true)
    assert.matches("File too large", rp.stats_error, 1, true)
    assert.equal("false", rp.failing2, "the stream writes again")
    assert.equal(rp.lost1, rp.lost2, "nothing more was lost")
    assert.equal("nil", rp.stop)
    assert.matches(rp.lost1 .. " lines lost", rp.msg, 1, true)
    local _, reports = r.err:gsub("the stream cannot write", "")
    assert.equal(1, reports, "one line on stderr at the first failure: " .. r.err)
    assert.matches("the stream writes again", r.err, 1, true)
    -- what was written after the room came back reads back
    vmtrace.enable()
    local n, info = vmtrace.load(path)
    assert.equal(10, n)
    assert.equal(0, info.skipped_lines)
  end)

  it("an append after a torn last line starts on a fresh line; the torn line is skipped", function()
    local path = tmp("torn.ndjson")
    vmtrace.enable()
    assert(vmtrace.stream(path))
    vmtrace.finish(vmtrace.start("pipeline", "first run"))
    vmtrace.stream(nil)
    local text = helper.read(path)
    helper.write(path, text .. '{"type":"start","span":{"span_id":2,"kin') -- a SIGKILL mid-line
    vmtrace.enable()
    assert(vmtrace.stream(path, { append = true }))
    vmtrace.finish(vmtrace.start("pipeline", "second run"))
    vmtrace.stream(nil)
    local n, info = vmtrace.load(path)
    assert.equal(1, n)
    assert.equal(1, info.skipped_lines)
    assert.equal("second run", vmtrace.spans()[1].name)
  end)
end)

describe("files", function()
  with_tmp()

  local function mode(path)
    local _, out = helper.run("stat -c %a " .. q(path))
    return out:gsub("%s+$", "")
  end

  it("an export keeps the mode of the file it replaces", function()
    vmtrace.enable()
    vmtrace.finish(vmtrace.start("pipeline", "x"))
    local path = tmp("mode.json")
    helper.write(path, "old")
    os.execute("chmod 640 " .. q(path))
    assert.is_true(vmtrace.export("json", path))
    assert.equal("640", mode(path))
    assert.matches('"name":"x"', helper.read(path), 1, true)
  end)

  it("a symlink at the target is replaced; the file it pointed to is left alone", function()
    vmtrace.enable()
    vmtrace.finish(vmtrace.start("pipeline", "x"))
    local victim, link = tmp("victim"), tmp("link.json")
    helper.write(victim, "keep me")
    os.execute("ln -s " .. q(victim) .. " " .. q(link))
    assert.is_true(vmtrace.export("json", link))
    assert.equal("keep me", helper.read(victim))
    local _, kind = helper.run("stat -c %F " .. q(link))
    assert.matches("regular file", kind, 1, true)
  end)

  it("a temporary file left by a killed export is recognisable by its name", function()
    local dir = tmp("killed")
    os.execute("mkdir " .. q(dir))
    local target = dir .. "/trace.json"
    local script = tmp("big.lua")
    helper.write(script, ([[
local vmtrace = require "vmtrace"
vmtrace.enable()
for i = 1, 300000 do
  local id = vmtrace.start("fn_call", "s")
  vmtrace.set_metadata(id, "pad", ("x"):rep(200))
  vmtrace.finish(id)
end
io.open(%q, "w"):close()
while true do vmtrace.export("json", %q) end
]]):format(dir .. "/ready", target))
    local pidf = tmp("pid")
    os.execute(("cd %s && (env LUA_PATH=%s LUA_CPATH=%s lua5.4 %s & echo $! > %s)"):format(
      q(ROOT), q(package.path), q(package.cpath), q(script), q(pidf)))
    local pid = helper.read(pidf):match("%d+")
    local found
    for _ = 1, 600 do
      local _, ls = helper.run("ls " .. q(dir))
      found = ls:match("(trace%.json%.vmtrace%-tmp%-%w%w%w%w%w%w)")
      if found then break end
      os.execute("sleep 0.05")
    end
    os.execute("kill -9 " .. pid)
    assert.is_string(found, "no temporary file showed up")
  end)

  it("vmtrace summary prints valid UTF-8 whatever bytes names hold", function()
    vmtrace.enable()
    vmtrace.finish(vmtrace.start("pipeline", "n\0u\255l\254"))
    assert.is_truthy(utf8.len(vmtrace.summary()))
    local path = tmp("bytes.json")
    assert.is_true(vmtrace.export("json", path))
    local _, out = helper.run(ROOT .. "/bin/vmtrace summary " .. q(path))
    assert.is_truthy(utf8.len(out), out)
    assert.matches("pipeline n\u{FFFD}u\u{FFFD}l\u{FFFD} 0ms", out, 1, true)
  end)
end)
