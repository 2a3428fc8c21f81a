#!/bin/sh
# tests/rock/run.sh: install the rock as a user would, from a clean copy of
# the checkout (the files git tracks or would track, nothing built), into a
# temporary luarocks tree with a plain `luarocks --lua-version=5.4 make`, then
# run tests/rock/smoke_spec.lua against that tree alone. Prints TAP.
set -u
cd "$(dirname "$0")/../.." || exit 1
root=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/clone"
if git rev-parse --git-dir >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard | xargs -0 tar cf - 2>/dev/null | tar xf - -C "$tmp/clone"
else
  tar cf - --exclude=./build --exclude=./out . | tar xf - -C "$tmp/clone"
fi
if ! (cd "$tmp/clone" && luarocks --lua-version=5.4 make --tree="$tmp/tree") >"$tmp/log" 2>&1; then
  echo "not ok 1 - luarocks --lua-version=5.4 make installs the rock from a clean copy"
  sed 's/^/# /' "$tmp/log" | tail -n 30
  echo "1..1"
  exit 1
fi
echo "ok 1 - luarocks --lua-version=5.4 make installs the rock from a clean copy"
# the smoke spec sees only the installed tree (and busted itself), run from
# a directory without the checkout's .busted
eval "$(luarocks --lua-version=5.4 --tree="$tmp/tree" path)"
export LUA_PATH="$LUA_PATH;$(lua5.4 -e 'print(package.path)')"
cd "$tmp" && VT_ROCK_TREE="$tmp/tree" VT_ROCK_LOG="$tmp/log" \
  lua5.4 "$root/tools/busted.lua" -o TAP "$root/tests/rock/smoke_spec.lua"
