#!/bin/sh
# tests/rock/run.sh [--reuse]: install the rock as a user would
# (tools/install_rock.sh: a plain `luarocks --lua-version=5.4 make` from a
# clean copy of the checkout) into a temporary luarocks tree, then run
# tests/rock/smoke_spec.lua against that tree alone. Prints TAP.
# --reuse (make test): the copy gets build/obj, the objects this checkout
# compiled with the Makefile's flags, so only what differs is compiled; the
# smoke spec then checks that nothing was. Without it (make asan, in
# .ci/run), everything is compiled in the copy.
set -u
cd "$(dirname "$0")/../.." || exit 1
root=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
obj=""
what="from a clean copy"
if [ "${1:-}" = --reuse ]; then
  obj="$root/build/obj"
  what="from a clean copy given the checkout's objects, CC and CFLAGS"
fi
if ! tools/install_rock.sh "$tmp/tree" $obj >"$tmp/log" 2>&1; then
  echo "not ok 1 - luarocks --lua-version=5.4 make installs the rock $what"
  sed 's/^/# /' "$tmp/log" | tail -n 30
  echo "1..1"
  exit 1
fi
echo "ok 1 - luarocks --lua-version=5.4 make installs the rock $what"
# the smoke spec sees only the installed tree (and busted itself), run from
# a directory without the checkout's .busted
eval "$(luarocks --lua-version=5.4 --tree="$tmp/tree" path)"
export LUA_PATH="$LUA_PATH;$(lua5.4 -e 'print(package.path)')"
cd "$tmp" && VT_ROCK_TREE="$tmp/tree" VT_ROCK_LOG="$tmp/log" VT_ROCK_REUSED="${obj:+1}" \
  lua5.4 "$root/tools/busted.lua" -o TAP "$root/tests/rock/smoke_spec.lua"
