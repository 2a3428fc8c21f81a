-- The README's examples, run: every fenced block of README.md tagged
-- ```lua, ```c or ```sh is a test named by its line and the heading it is
-- under, and a block that fails fails its test.
--
--   lua   run by a child lua5.4 with LUA_PATH/LUA_CPATH at this checkout
--         (the module paths of the busted process, made absolute)
--   c     compiled as the Makefile builds examples/host.c (csrc/vmtrace.h,
--         build/libvmtrace.a, Lua, -lcjson -luuid -lm; -Werror), then run
--   sh    run by `sh -e` (PATH begins with bin/, so `vmtrace` is the command)
--   text  not run: output, diagrams (the only other tag allowed; a block
--         without a tag fails, so that nothing is left out unsaid)
--
-- All blocks run in README order in one temporary directory, each with it as
-- its working directory, so a block may read what an earlier one wrote
-- (run.ndjson, trace.json) and nothing is left in the checkout. The
-- directory holds symbolic links bin, build, csrc, examples and lua to the
-- checkout, so the README's relative paths (`bin/vmtrace`,
-- `examples/host.c`, `build/libvmtrace.a`) work as they do from a checkout.
--
-- A block is changed by a directive, an HTML comment on a line of its own
-- just before its opening fence (blank lines between are allowed). GitHub
-- does not render them. The directives:
--
--   <!-- readme-test: skip REASON -->  the block is not run; its test is
--       reported as skipped (TAP "# SKIP") with the reason. A reason is
--       required.
--   <!-- readme-test: file NAME -->  the block is not run by itself: it is
--       written to NAME in the directory before any block runs, for another
--       block to run (its test checks that another block names it; that
--       block fails when it fails).
--   <!-- readme-test: output -->  before a ```text block: what the runnable
--       block before it prints on stdout, compared line by line, with every
--       "<digits>ms" standing for any number of milliseconds (durations vary).
--   <!-- readme-test: collector -->  the block runs with
--       OTEL_EXPORTER_OTLP_ENDPOINT at a local OTLP/HTTP receiver
--       (tests/otlp/receiver.js); skipped with a message when node is not
--       installed.
--
-- An unknown directive is an error, so a typo cannot skip a block silently.

local helper = require "spec.helper"

local q, read, write = helper.shq, helper.read, helper.write
local ROOT = helper.ROOT
local TIMEOUT = 30 -- seconds, per block

---------------------------------------------------------------------------
-- README.md, parsed into blocks
---------------------------------------------------------------------------

local KNOWN_TAGS = { lua = true, c = true, sh = true, text = true }

--- The fenced blocks of a Markdown text: {line, tag, body, heading,
-- directives = {{name, arg, line}}}; line is the opening fence's.
local function parse_blocks(text)
  local blocks, pending = {}, {}
  local heading = "(top)"
  local cur
  local n = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if cur then
      if line:match("^```%s*$") then
        cur.body = table.concat(cur.lines, "\n") .. "\n"
        cur.lines = nil
        blocks[#blocks + 1] = cur
        cur = nil
      else
        cur.lines[#cur.lines + 1] = line
      end
    else
      local tag = line:match("^```(.*)$")
      if tag then
        cur = { line = n, tag = tag:match("^%s*(.-)%s*$"), heading = heading,
                directives = pending, lines = {} }
        pending = {}
      elseif line:match("^#+ ") then
        heading = line
        pending = {}
      else
        local d = line:match("^%s*<!%-%-%s*readme%-test:%s*(.-)%s*%-%->%s*$")
        if d then
          local name, arg = d:match("^(%S+)%s*(.-)$")
          pending[#pending + 1] = { name = name, arg = arg, line = n }
        elseif line:match("readme%-test") then
          error(("README.md:%d: a readme-test directive must be a line of its own: %s"):format(n, line))
        elseif line:match("%S") then
          pending = {} -- a directive belongs to the block right after it
        end
      end
    end
  end
  assert(not cur, "README.md: a fence is not closed")
  return blocks
end

local README = read(ROOT .. "/README.md")
local BLOCKS = parse_blocks(README)

local function title(b)
  return ("README.md:%d %s (%s)"):format(b.line, b.tag ~= "" and b.tag or "untagged", b.heading)
end

-- Directives checked and attached: b.skip, b.file, b.expect (output text),
-- b.collector.
local DIRECTIVES = { skip = true, file = true, output = true, collector = true }
local directive_errors = {}
for i, b in ipairs(BLOCKS) do
  for _, d in ipairs(b.directives) do
    if not DIRECTIVES[d.name] then
      directive_errors[#directive_errors + 1] = ("README.md:%d: unknown directive '%s'"):format(d.line, d.name)
    elseif d.name == "skip" then
      if d.arg == "" then
        directive_errors[#directive_errors + 1] = ("README.md:%d: skip needs a reason"):format(d.line)
      end
      b.skip = d.arg
    elseif d.name == "file" then
      if not d.arg:match("^[%w_.-]+$") then
        directive_errors[#directive_errors + 1] = ("README.md:%d: file needs a plain file name"):format(d.line)
      end
      b.file = d.arg
    elseif d.name == "output" then
      local prev = BLOCKS[i - 1]
      if b.tag ~= "text" or not prev or prev.tag == "text" then
        directive_errors[#directive_errors + 1] =
          ("README.md:%d: output goes before a text block that follows a runnable one"):format(d.line)
      else
        prev.expect, prev.expect_line = b.body, b.line
      end
    elseif d.name == "collector" then
      b.collector = true
    end
  end
end

---------------------------------------------------------------------------
-- running blocks
---------------------------------------------------------------------------

local DIR -- the work directory

-- This process's module paths, made absolute (the blocks run elsewhere): a
-- child finds the build this suite tests (build/, or build/asan/ under
-- make asan, whose runtime the children inherit through LD_PRELOAD).
local function absolute(paths)
  return (paths:gsub("[^;]+", function(t)
    if t:sub(1, 1) ~= "/" and t:sub(1, 2) ~= "./" then return ROOT .. "/" .. t end
  end))
end
local LUA_ENV = ("LUA_PATH=%s LUA_CPATH=%s"):format(q(absolute(package.path)), q(absolute(package.cpath)))

local function sh_out(cmd)
  local code, out = helper.run(cmd)
  assert(code == 0, "failed: " .. cmd)
  return (out:gsub("%s+$", ""))
end

-- The C flags and libraries the Makefile builds build/host_example with.
local C_FLAGS, C_LIBS
local function c_flags()
  if not C_FLAGS then
    local inc = sh_out("pkg-config --variable=includedir lua5.4") .. "/lua5.4"
    C_FLAGS = "-std=c99 -Wall -Wextra -Werror -O2 -I" .. q(ROOT .. "/csrc") .. " -I" .. q(inc)
    C_LIBS = q(ROOT .. "/build/libvmtrace.a") .. " " .. sh_out("pkg-config --libs lua5.4") .. " -lcjson -luuid -lm"
  end
  return C_FLAGS, C_LIBS
end

-- The settings vmtrace reads from the environment are not this run's to
-- give the blocks: `env -u` for each one set (OTEL_*, TRACEPARENT, TRACESTATE).
local UNSET
local function unset()
  if not UNSET then
    local _, vars = helper.run("env")
    local names = {}
    for name in vars:gmatch("%f[^\n%z]([%w_]+)=") do
      if name:match("^OTEL_") or name == "TRACEPARENT" or name == "TRACESTATE" then
        names[#names + 1] = "-u " .. name
      end
    end
    UNSET = table.concat(names, " ")
  end
  return UNSET
end

--- Runs a shell command line in DIR with a timeout: {code, out, err}.
local function run_in_dir(cmd, env)
  local out, err = DIR .. "/.out", DIR .. "/.err"
  local full = ("cd %s && env %s PATH=%s %s %s timeout -k 5 %d %s >%s 2>%s"):format(
    q(DIR), unset(), q(ROOT .. "/bin:" .. os.getenv("PATH")), LUA_ENV, env or "", TIMEOUT, cmd, q(out), q(err))
  local _, _, code = os.execute(full)
  return { code = code, out = helper.try_read(out) or "", err = helper.try_read(err) or "" }
end

local function explain(what, r)
  return ("%s (status %s)\n--- stdout:\n%s--- stderr:\n%s"):format(what, tostring(r.code), r.out, r.err)
end

-- A duration stands for any: "12ms" and "0ms" compare equal.
local function normalize(text)
  return (text:gsub("%d+ms", "<N>ms"):gsub("%s+$", ""))
end

--- The OTLP receiver for `collector` blocks: {url, stop = function}, or
-- nil when node is missing.
local function start_receiver()
  if not os.execute("command -v node >/dev/null 2>&1") then return nil end
  local rec, outf, pidf = DIR .. "/.receiver.jsonl", DIR .. "/.receiver.out", DIR .. "/.receiver.pid"
  local handle = assert(io.popen(("echo $$ > %s; exec env -u LD_PRELOAD node %s --record %s > %s 2>&1")
    :format(q(pidf), q(ROOT .. "/tests/otlp/receiver.js"), q(rec), q(outf)), "w"))
  local port
  for _ = 1, 300 do -- at most ~15 s
    port = (helper.try_read(outf) or ""):match("listening (%d+)")
    if port then break end
    os.execute("sleep 0.05")
  end
  local function stop()
    local pid = (helper.try_read(pidf) or ""):match("%d+")
    if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
    handle:close()
  end
  if not port then
    stop()
    error("the OTLP receiver did not start: " .. (helper.try_read(outf) or ""))
  end
  return { url = "http://127.0.0.1:" .. port, stop = stop, record = rec }
end

local function run_block(b, i)
  local name = ("block%d"):format(i)
  local env = ""
  local receiver
  if b.collector then
    receiver = start_receiver()
    if not receiver then return pending(title(b) .. ": node is not installed (the OTLP receiver is a node script)") end
    env = "OTEL_EXPORTER_OTLP_ENDPOINT=" .. q(receiver.url)
  end
  local r
  local ok, err = pcall(function()
    if b.tag == "lua" then
      write(DIR .. "/" .. name .. ".lua", b.body)
      r = run_in_dir("lua5.4 " .. name .. ".lua", env)
    elseif b.tag == "sh" then
      write(DIR .. "/" .. name .. ".sh", b.body)
      -- the command and the compiler as a user runs them: no sanitizer preloaded
      r = run_in_dir("env -u LD_PRELOAD sh -e " .. name .. ".sh", env)
    elseif b.tag == "c" then
      local flags, libs = c_flags()
      write(DIR .. "/" .. name .. ".c", b.body)
      local cc = run_in_dir(("env -u LD_PRELOAD cc %s -o %s %s %s"):format(flags, name, name .. ".c", libs))
      assert(cc.code == 0, explain("the block does not compile", cc))
      r = run_in_dir("./" .. name, env)
    end
  end)
  if receiver then
    receiver.stop()
    if ok and r.code == 0 then
      -- what the block sent arrived
      local got = helper.try_read(receiver.record) or ""
      assert(got:match('"resourceSpans"'), "the collector received no spans:\n" .. got)
    end
  end
  assert(ok, err)
  assert(r.code == 0, explain(title(b) .. " failed", r))
  if b.expect then
    assert.are.equal(normalize(b.expect), normalize(r.out),
      ("stdout differs from the output shown at README.md:%d"):format(b.expect_line))
  end
end

---------------------------------------------------------------------------
-- the tests
---------------------------------------------------------------------------

describe("the README's blocks:", function()
  lazy_setup(function()
    local _, out = helper.run("mktemp -d /tmp/vmtrace-readme.XXXXXX")
    DIR = out:gsub("%s+$", "")
    for _, d in ipairs({ "bin", "build", "csrc", "examples", "lua" }) do
      assert(os.execute(("ln -s %s %s"):format(q(ROOT .. "/" .. d), q(DIR .. "/" .. d))))
    end
    for _, b in ipairs(BLOCKS) do
      if b.file and not b.skip then write(DIR .. "/" .. b.file, b.body) end
    end
  end)

  lazy_teardown(function()
    if DIR and DIR:match("^/tmp/vmtrace%-readme%.") then os.execute("rm -rf " .. q(DIR)) end
  end)

  it("has code blocks, each with a known tag and valid directives", function()
    assert.is_true(#BLOCKS > 10, "README.md: too few code blocks found")
    assert.same({}, directive_errors)
    for _, b in ipairs(BLOCKS) do
      assert(KNOWN_TAGS[b.tag], title(b) .. ": tag it lua, c, sh or text")
    end
  end)

  for i, b in ipairs(BLOCKS) do
    if b.tag ~= "text" and KNOWN_TAGS[b.tag] then
      if b.skip then
        pending(title(b) .. ": skipped: " .. b.skip)
      elseif b.file then
        it(title(b) .. ": written to " .. b.file .. " for another block to run", function()
          local used = false
          for j, other in ipairs(BLOCKS) do
            if j ~= i and not other.skip and not other.file and other.tag ~= "text"
                and other.body:find(b.file, 1, true) then
              used = true
            end
          end
          assert(used, "no block runs " .. b.file)
        end)
      else
        it(title(b), function() run_block(b, i) end)
      end
    end
  end
end)

describe("README.md tells the truth about", function()
  it("every public function of the module (each is named in the README)", function()
    local vmtrace = require "vmtrace"
    local missing = {}
    local function check(prefix, t)
      for k, v in pairs(t) do
        if type(k) == "string" and k:sub(1, 1) ~= "_" then
          local full = prefix .. k
          if type(v) == "function" or prefix == "vmtrace." then
            -- named as vmtrace.x, or as `x(` / `.x` in a table of its section
            if not (README:find(full, 1, true) or README:find("`" .. k .. "(", 1, true)
                    or README:find("`." .. k, 1, true) or README:find(", ." .. k, 1, true)) then
              missing[#missing + 1] = full
            end
          end
        end
      end
    end
    check("vmtrace.", vmtrace)
    check("vmtrace.otlp.", vmtrace.otlp)
    check("vmtrace.pricing.", vmtrace.pricing)
    check("vmtrace.coroutine.", vmtrace.coroutine)
    table.sort(missing)
    assert.same({}, missing)
  end)

  it("every vmtrace.<name> it mentions (each exists)", function()
    local vmtrace = require "vmtrace"
    -- names that are not fields of the module: files, modules, attributes
    local NOT_FIELDS = {
      ["vmtrace.h"] = true, ["vmtrace.core"] = true, ["vmtrace.otlp_http"] = true,
      ["vmtrace.timing"] = true, ["vmtrace.kind"] = true, ["vmtrace.dropped_spans"] = true,
      ["vmtrace.cli"] = true, ["vmtrace.run"] = true,
    }
    local unknown = {}
    for name in README:gmatch("%f[%w_]vmtrace%.[%a_][%w_]*%.?[%a_]*[%w_]*") do
      name = name:gsub("%.$", "")
      if not NOT_FIELDS[name] and not name:match("^vmtrace%.timing%.") then
        local v = vmtrace
        for part in name:gmatch("%.([%w_]+)") do v = type(v) == "table" and v[part] or nil end
        if v == nil then unknown[name] = true end
      end
    end
    local list = {}
    for k in pairs(unknown) do list[#list + 1] = k end
    table.sort(list)
    assert.same({}, list)
  end)

  it("the check targets: make asan, valgrind and gc-stress each build the plain build the specs use", function()
    -- (make asan once built only build/asan, so in a fresh clone it failed
    -- the README's blocks that run bin/vmtrace or compile C, the fork test
    -- and a child that copies build/vmtrace/core.so)
    for _, target in ipairs { "asan", "valgrind", "gc-stress" } do
      local out = sh_out(("make -n -B -C %s %s 2>&1"):format(q(ROOT), target))
      for _, piece in ipairs { "-o build/vmtrace/core.so ", "ar rcs build/libvmtrace.a ", "-o build/fork_host " } do
        assert.truthy(out:find(piece, 1, true), target .. " does not build: " .. piece)
      end
    end
  end)

  it("the C host example (the c block is examples/host.c, without its first comment)", function()
    local host = read(ROOT .. "/examples/host.c"):gsub("^/%*.-%*/\n", "", 1)
    local found = false
    for _, b in ipairs(BLOCKS) do
      if b.tag == "c" and b.body:find("luaopen_vmtrace_core", 1, true) then
        found = true
        assert.are.equal(host, b.body, title(b) .. " differs from examples/host.c")
      end
    end
    assert(found, "README.md has no C host example")
  end)

  it("every C name it mentions (each vt_* and VT_* is in csrc/)", function()
    local _, src = helper.run("cat " .. q(ROOT) .. "/csrc/*.h " .. q(ROOT) .. "/csrc/*/*.[ch]")
    local missing, seen = {}, {}
    for name in README:gmatch("%f[%w_][vV][tT]_[%w_]+") do
      -- a name ending in "_" is a prefix (`vt_collector_*`, `vt_vb_*`)
      if not seen[name] and (name:match("^vt_") or name:match("^VT_")) and not name:match("_$") then
        seen[name] = true
        if not src:find("%f[%w_]" .. name .. "%f[^%w_]") then missing[#missing + 1] = name end
      end
    end
    table.sort(missing)
    assert.same({}, missing)
  end)

  it("every file it names in backquotes (each exists)", function()
    local TOP = { csrc = true, lua = true, bin = true, spec = true, tests = true, bench = true,
                  examples = true, tools = true, report = true, docs = true, rockspec = true, [".ci"] = true }
    local missing, seen = {}, {}
    for path in README:gmatch("`([%w_.]+/[%w_./-]*)`") do
      local top = path:match("^([^/]+)/")
      if TOP[top] and not seen[path] then
        seen[path] = true
        local f = io.open(ROOT .. "/" .. path, "r")
        if f then f:close() else missing[#missing + 1] = path end
      end
    end
    table.sort(missing)
    assert.same({}, missing)
    assert.is_true(next(seen) ~= nil)
  end)

  it("the layout (each directory and source file is named in the Layout section)", function()
    local layout = README:match("\n## Layout\n(.-)\n## ")
    assert(layout, "README.md has no Layout section")
    local missing = {}
    local _, files = helper.run("cd " .. q(ROOT) .. " && ls -d */ tests/*/ csrc/*/*.[ch] lua/vmtrace/*.lua"
      .. " bench/* examples/* tools/* report/* 2>/dev/null")
    for f in files:gmatch("[^\n]+") do
      -- a directory by its name, a file by its name without extension
      -- (the Layout section lists l_auto for csrc/lua/l_auto.c)
      local base = f:match("([^/]+)/$") or f:match("([^/]+)%.[^./]+$") or f:match("([^/]+)$")
      -- build/ and out/ are made by make
      if base ~= "build" and base ~= "out" and not layout:find(base, 1, true) then
        missing[#missing + 1] = f
      end
    end
    assert.same({}, missing)
  end)
end)
