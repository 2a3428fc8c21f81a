#!/bin/sh
# Runs the C tests (TAP), the fuzz regression replays and the busted specs,
# shows failures, and ends with one line: "N passed, N failed" (the count
# across all of them). The mode says how:
#   plain     make test: builds (make check-tests) while npm installs the
#             test packages (make npm-packages), then runs everything on
#             the normal build, the rock installed with luarocks from a
#             clean copy given the build's objects (tests/rock/run.sh
#             --reuse) and the browser tests
#   asan      the ASan+UBSan build in build/asan (make asan), and the rock
#             installed from a clean copy, everything compiled there
#   valgrind  everything under valgrind memcheck (make valgrind)
#   gc        the busted specs under an aggressive garbage collector (make gc-stress)
set -u
cd "$(dirname "$0")/.."
mode=${1:-plain}
pass=0
fail=0
tmp=$(mktemp)
jobs=$(mktemp -d) # the jobs' output and exit status: NAME.out, NAME.rc
trap 'rm -rf "$tmp" "$jobs"' EXIT

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
  plain)
    export VT_OOM_STEP=4 # test_oom: every 4th allocation made to fail (make asan tries every one)
    ;;
  asan)
    B=build/asan
    export VT_OOM_STEP=1 # test_oom: every allocation made to fail (make test: every 4th)
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

# Jobs run beside the foreground: job NAME CMD... starts one, collect NAME
# LABEL waits for it and counts its TAP.
job() {
  name=$1
  shift
  { "$@" >"$jobs/$name.out" 2>&1; echo $? >"$jobs/$name.rc"; } &
  echo $! >"$jobs/$name.pid"
}
collect() {
  wait "$(cat "$jobs/$1.pid")"
  cp "$jobs/$1.out" "$tmp"
  tally "$2" "$(cat "$jobs/$1.rc")"
}
busted() { # spec files and busted options
  env $busted_env LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="$B/?.so;;" \
    $run lua5.4 tools/busted.lua --cpath="$B/?.so" $helper -o TAP "$@"
}

# The specs that decode OTLP with tests/otlp/verify.js need the npm packages
# (those that name it; the OTLP/HTTP spec only in its two describes named
# here); the others do not, and run while npm installs. The OTLP/HTTP spec
# mostly waits on node and child processes: it runs in three processes of its
# own (its verify.js describes, its slow describes, the rest).
otlp=spec/16-otlp_http_spec.lua
verified=$(grep -l 'otlp_verified\|verify_otlp\|verify\.js' spec/*_spec.lua | grep -v "^$otlp$" | tr '\n' ' ')
otlp_verified="--filter=^vmtrace%.otlp%sgzip%s --filter=^vmtrace%.otlp%swhat%sthe%sreceiver%sgot"
otlp_slow="--filter=^vmtrace%.otlp%sa%sreceiver%sthat%sis%sdown --filter=^vmtrace%.otlp%sfaults, \
--filter=^vmtrace%.otlp%sprocesses%sthat%sshare"
otlp_rest=$(echo "$otlp_verified $otlp_slow" | sed 's/--filter=/--filter-out=/g')
rest=""  # the others, in two processes (every other file), for two CPUs
rest2=""
for f in spec/*_spec.lua; do
  case " $otlp $verified " in
    *" $f "*) ;;
    *) rest="$rest $f"; t=$rest; rest=$rest2; rest2=$t ;;
  esac
done

if [ "$mode" = plain ]; then
  job npm make --no-print-directory npm-packages
  if ! make --no-print-directory -j4 check-tests; then
    echo "not ok - make check-tests failed: nothing was run"
    echo "0 passed, 1 failed"
    exit 1
  fi
  job rock tests/rock/run.sh --reuse
elif [ "$mode" = asan ]; then
  job rock tests/rock/run.sh
fi
job otlp_rest busted $otlp_rest $otlp
job otlp_slow busted $otlp_slow $otlp

if [ "$mode" != gc ]; then
  for t in test_core test_clock test_states test_oom; do
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

job rest busted $rest
job rest2 busted $rest2
if [ "$mode" = plain ]; then
  wait "$(cat "$jobs/npm.pid")"
  if [ "$(cat "$jobs/npm.rc")" != 0 ]; then
    cat "$jobs/npm.out"
    echo "not ok - make npm-packages failed: the OTLP definitions and browser packages are missing"
    fail=$((fail + 1))
  fi
  job browser tests/browser/make_test.sh
fi
job otlp_verified busted $otlp_verified $otlp
busted $verified >"$tmp" 2>&1
tally "$mode busted (verify.js)" $?
collect rest "$mode busted"
collect rest2 "$mode busted (2)"
collect otlp_verified "$mode busted (otlp/http, verify.js)"
collect otlp_rest "$mode busted (otlp/http)"
collect otlp_slow "$mode busted (otlp/http, slow)"
[ -f "$jobs/rock.pid" ] && collect rock "$mode rock"
if [ -f "$jobs/browser.pid" ]; then
  wait "$(cat "$jobs/browser.pid")"
  rc=$(cat "$jobs/browser.rc")
  if [ "$rc" = 77 ]; then # no chromium and not root: said, not counted
    grep -E '^(ok|not ok|1\.\.0)' "$jobs/browser.out" | head -n 3
    echo "plain browser: skipped (chromium could not be installed: see the line above)"
    grep -E '^(ok|not ok)' "$jobs/browser.out" >"$tmp"
    tally "$mode browser (template only)" 0
  else
    cp "$jobs/browser.out" "$tmp"
    tally "$mode browser" "$rc"
  fi
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
