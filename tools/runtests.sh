#!/bin/sh
# Runs the C tests (TAP), the fuzz regression replays and the busted specs,
# shows failures, and ends with one line: "N passed, N failed" (the count
# across all of them). The mode says how:
#   plain     the normal build (make test), and the rock installed from a
#             clean copy with luarocks (tests/rock/run.sh)
#   asan      the ASan+UBSan build in build/asan (make asan)
#   valgrind  everything under valgrind memcheck (make valgrind)
#   gc        the busted specs under an aggressive garbage collector (make gc-stress)
set -u
cd "$(dirname "$0")/.."
mode=${1:-plain}
pass=0
fail=0
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

tally() { # name status
  p=$(grep -c '^ok ' "$tmp")
  f=$(grep -c '^not ok ' "$tmp")
  if [ "$2" -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1
    echo "not ok - $1 exited with status $2 before reporting a failure"
    tail -n 20 "$tmp"
  fi
  grep -A8 '^not ok ' "$tmp" | grep -v '^ok ' || true
  echo "$1: $p passed, $f failed"
  pass=$((pass + p))
  fail=$((fail + f))
}

B=build
# the specs read it: ASan makes resident-memory figures and ulimit -v meaningless
export VMTRACE_TEST_MODE="$mode"
run=""
busted_env=""
helper=""
case "$mode" in
  plain) ;;
  asan)
    B=build/asan
    export VT_OOM_STEP=1 # test_oom: every allocation made to fail, as in make test
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23
    export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
    # leaks are checked in the C tests here and in busted under valgrind: with
    # the runtime preloaded, every program the specs start would report its own
    busted_env="LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0:exitcode=23"
    ;;
  valgrind)
    run="valgrind -q --keep-debuginfo=yes --error-exitcode=23 --leak-check=full --errors-for-leak-kinds=definite"
    export VT_OOM_STEP=23 # test_oom under valgrind: a sample of the failing allocations
    ;;
  gc)
    helper="--helper=spec/gc_stress.lua"
    ;;
  *) echo "usage: tools/runtests.sh [plain|asan|valgrind|gc]" >&2; exit 2 ;;
esac

# the specs in two processes at once: the OTLP/HTTP spec (mostly
# waiting on node and child processes) beside all the others, started first
slow="spec/16-otlp_http_spec.lua"
rest=""
for f in spec/*_spec.lua; do
  case " $slow " in *" $f "*) ;; *) rest="$rest $f" ;; esac
done
tmp2=$(mktemp)
tmp3=$(mktemp)
trap 'rm -f "$tmp" "$tmp2" "$tmp3"' EXIT
rock=""
tmp4=$(mktemp)
trap 'rm -f "$tmp" "$tmp2" "$tmp3" "$tmp4"' EXIT
browser=""
if [ "$mode" = plain ]; then # the rock (tests/rock) and the browser tests (tests/browser)
  { tests/rock/run.sh >"$tmp3" 2>&1; echo $? >"$tmp3.rc"; } &
  rock=$!
  { tests/browser/make_test.sh >"$tmp4" 2>&1; echo $? >"$tmp4.rc"; } &
  browser=$!
fi
# all of them start before the C tests: the OTLP spec and the browser
# tests spend most of their time waiting
env $busted_env LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="$B/?.so;;" \
  $run lua5.4 tools/busted.lua --cpath="$B/?.so" $helper -o TAP $slow >"$tmp2" 2>&1 &
bg=$!
if [ "$mode" != gc ]; then
  for t in test_core test_states test_oom; do
    $run "$B/$t" >"$tmp" 2>&1
    tally "$mode $t" $?
  done
  # the README's C host example: it records a span from C that Lua reads
  if $run "$B/host_example" 2>&1 | grep -q '^tool_call fetch [0-9]*ms (bytes=512)$'; then
    echo "ok 1 - examples/host.c records from C what the script reads" >"$tmp"
  else
    echo "not ok 1 - examples/host.c records from C what the script reads" >"$tmp"
  fi
  tally "$mode host_example" 0
  for h in ops reader traceparent; do
    set --
    for f in tests/fuzz/regressions/$h/* tests/fuzz/corpus/$h/*; do
      [ -f "$f" ] && set -- "$@" "$f"
    done
    $run "$B/replay_$h" "$@" >"$tmp" 2>&1
    tally "$mode replay_$h" $?
  done
fi

env $busted_env LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="$B/?.so;;" \
  $run lua5.4 tools/busted.lua --cpath="$B/?.so" $helper -o TAP $rest >"$tmp" 2>&1
tally "$mode busted" $?
wait "$bg"
rc=$?
cp "$tmp2" "$tmp"
tally "$mode busted (otlp)" $rc
if [ -n "$rock" ]; then
  wait "$rock" "$browser"
  cp "$tmp3" "$tmp"
  tally "$mode rock" "$(cat "$tmp3.rc")"
  rc=$(cat "$tmp4.rc")
  cp "$tmp4" "$tmp"
  if [ "$rc" = 77 ]; then # no chromium and not root: said, not counted
    grep -E '^(ok|not ok|1\.\.0)' "$tmp" | head -n 3
    echo "plain browser: skipped (chromium could not be installed: see the line above)"
    : >"$tmp"
    grep -E '^(ok|not ok)' "$tmp4" >"$tmp"
    tally "$mode browser (template only)" 0
  else
    tally "$mode browser" "$rc"
  fi
  rm -f "$tmp3.rc" "$tmp4.rc"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
