#!/bin/sh
# run.sh: the browser tests of the HTML report, with what they need.
# Installs Debian's chromium (as root; otherwise prints the command and exits
# 77, "skipped") and the pinned npm packages of tests/browser/package.json
# into build/npm, then runs the tests, printing TAP. Extra arguments go to
# report.test.js (e.g. --writer 'bin/vmtrace report {in} -o {out}').
#   tests/browser/run.sh [report.test.js arguments]
# SPEEDSCOPE_FILE=trace.chrome.json also checks that file with speedscope.
set -u
cd "$(dirname "$0")/../.." || exit 1
here=tests/browser
npm_dir=${VMTRACE_NPM_DIR:-build/npm}
chromium=${CHROMIUM:-/usr/bin/chromium}

if [ ! -x "$chromium" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "# installing Debian's chromium"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }; } >&2 || {
      echo "1..0 # SKIP apt-get install chromium failed"
      exit 77
    }
  else
    echo "1..0 # SKIP chromium is not installed; run: sudo apt-get install -y chromium"
    exit 77
  fi
fi

# The exact versions pinned in package.json.
pins=$(node -e 'const d=require("./'$here'/package.json").dependencies; console.log(Object.keys(d).map(k=>k+"@"+d[k]).join(" "))')
missing=""
for pin in $pins; do
  name=${pin%@*}
  version=${pin##*@}
  have=$(node -e 'try{console.log(require("./'"$npm_dir"'/node_modules/'"$name"'/package.json").version)}catch(e){}' 2>/dev/null)
  [ "$have" = "$version" ] || missing="$missing $pin"
done
if [ -n "$missing" ]; then
  echo "# installing npm packages:$missing"
  npm install --prefix "$npm_dir" --no-audit --no-fund$missing >&2 || {
    echo "1..0 # SKIP npm install failed:$missing"
    exit 77
  }
fi

status=0
node $here/report.test.js "$@" || status=1
if [ -n "${SPEEDSCOPE_FILE:-}" ]; then
  node $here/speedscope.test.js "$SPEEDSCOPE_FILE" || status=1
fi
exit $status
