#!/bin/sh
# tools/install_rock.sh TREE [OBJ]: install the rock as a user would, from a
# clean copy of the checkout (the files git tracks or would track, nothing
# built), into the luarocks tree TREE with a plain
# `luarocks --lua-version=5.4 make`. With OBJ (this checkout's build/obj),
# its compiled objects go into the copy first, and luarocks is given the
# checkout's CC and CFLAGS (in place of its own, -O2 -fPIC): the Makefile
# reuses the objects compiled with the same compiler and flags
# (build/obj/cflags.txt) from the same sources, and compiles the rest. Its
# output goes to stdout; the exit status is luarocks'.
set -u
cd "$(dirname "$0")/.." || exit 1
tree=$1
obj=${2:-}
copy=$(mktemp -d)
trap 'rm -rf "$copy"' EXIT
if git rev-parse --git-dir >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard | xargs -0 tar cf - 2>/dev/null | tar xf - -C "$copy"
else
  tar cf - --exclude=./build --exclude=./out . | tar xf - -C "$copy"
fi
if [ -z "$obj" ]; then
  cd "$copy" && luarocks --lua-version=5.4 make --tree="$tree"
  exit
fi
mkdir -p "$copy/build" && cp -a "$obj" "$copy/build/obj" || exit 1
cc=$(make -s --no-print-directory print-CC)
cflags=$(make -s --no-print-directory print-CFLAGS)
cd "$copy" && luarocks --lua-version=5.4 make --tree="$tree" CC="$cc" CFLAGS="$cflags"
