#!/bin/sh
# Installs the Debian packages the build and the tests need when run as root;
# otherwise prints the exact command to run and stops.
set -u
pkgs="gcc make pkg-config lua5.4 liblua5.4-dev libcjson-dev uuid-dev libcurl4-openssl-dev zlib1g-dev lua-busted luarocks"
# The OTLP test decodes exports with Node.js and an npm package
# (tests/otlp/verify.js); a node or npm found on PATH is enough.
command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "vmtrace: installing missing Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q $missing || { apt-get update -q && apt-get install -y -q $missing; } || {
    echo "vmtrace: apt-get failed; install these packages:$missing" >&2
    exit 1
  }
else
  echo "vmtrace: missing Debian packages:$missing" >&2
  echo "Run this, then run make again:" >&2
  echo "  sudo apt-get install -y$missing" >&2
  exit 1
fi
