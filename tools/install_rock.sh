#!/bin/sh
# tools/install_rock.sh TREE: install the rock as a user would, from a clean
# copy of the checkout (the files git tracks or would track, nothing built),
# into the luarocks tree TREE with a plain `luarocks --lua-version=5.4 make`.
# Its output goes to stdout; the exit status is luarocks'.
set -u
cd "$(dirname "$0")/.." || exit 1
tree=$1
copy=$(mktemp -d)
trap 'rm -rf "$copy"' EXIT
if git rev-parse --git-dir >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard | xargs -0 tar cf - 2>/dev/null | tar xf - -C "$copy"
else
  tar cf - --exclude=./build --exclude=./out . | tar xf - -C "$copy"
fi
cd "$copy" && luarocks --lua-version=5.4 make --tree="$tree"
