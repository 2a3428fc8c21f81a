#!/bin/sh
# Runs the C tests and the busted specs (TAP), shows failures, and ends with
# one line: "N passed, N failed" (the count across both).
set -u
cd "$(dirname "$0")/.."
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
  fi
  grep -A8 '^not ok ' "$tmp" | grep -v '^ok ' || true
  echo "$1: $p passed, $f failed"
  pass=$((pass + p))
  fail=$((fail + f))
}

for t in build/test_core build/test_states; do
  "$t" >"$tmp" 2>&1
  tally "$t" $?
done

LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/?.so;;" \
  busted --lua=lua5.4 -o TAP >"$tmp" 2>&1
tally busted $?

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
