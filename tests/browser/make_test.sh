#!/bin/sh
# tests/browser/make_test.sh: the browser part of `make test` (TAP):
#  - the committed csrc/export/report_template.h is what report/ gives
#    (run `make report-template` after editing report/);
#  - the report written by vmtrace itself (bin/vmtrace report) in headless
#    Chromium with the network blocked (report.test.js);
#  - a Chrome trace export with repeated calls in speedscope's own importer.
# Chromium and the npm packages are installed by run.sh (as root); without
# them the browser tests are skipped with a message (exit 77).
set -u
cd "$(dirname "$0")/../.." || exit 1
mkdir -p build/browser
node tools/report.js --template -o build/browser/template.html &&
  lua5.4 tools/embed_template.lua build/browser/template.html build/browser/report_template.h
if cmp -s build/browser/report_template.h csrc/export/report_template.h; then
  echo "ok 1 - csrc/export/report_template.h is the page report/ makes"
else
  echo "not ok 1 - csrc/export/report_template.h is the page report/ makes (run make report-template)"
fi
LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/?.so;;" lua5.4 -e '
local vmtrace = require "vmtrace"
vmtrace.enable()
local run = vmtrace.start("pipeline", "run")
for i = 1, 5 do
  local step = vmtrace.start("step", "iteration")
  for j = 1, 3 do
    local id = vmtrace.start("tool_call", "grep")
    vmtrace.set_metadata(id, "pattern", "p" .. i .. j)
    vmtrace.finish(id)
  end
  vmtrace.finish(step)
end
vmtrace.finish(run)
assert(vmtrace.export("chrome", "build/browser/repeated.trace.json"))' || echo "not ok 2 - a Chrome trace to check"
tests/browser/run.sh --writer 'bin/vmtrace report {in} -o {out}'
status=$?
[ "$status" = 77 ] && exit 77
node tests/browser/speedscope.test.js build/browser/repeated.trace.json || status=1
exit $status
