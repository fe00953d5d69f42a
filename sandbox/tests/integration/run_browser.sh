#!/bin/sh
# The console end to end in headless Chromium (Debian chromium + chromium-driver, installed
# by scripts/setup.sh): the sandbox in the postgres profile on the test database, the
# golden flow clicked in /demo/ui, its visible result checked, a screenshot saved
# (HC_SANDBOX_SCREENSHOT, default $HC_BUILDDIR/sandbox/golden-flow.png).
# Skipped (77) only when chromium is missing and HC_SANDBOX_REQUIRE_BROWSER is not 1
# (scripts/test.sh sets it, so CI fails instead of skipping).
set -u
b="${HC_BUILDDIR:-.}"
src="${HC_SRCDIR:-.}"
shot=${HC_SANDBOX_SCREENSHOT:-$b/sandbox/golden-flow.png}
drv=$(command -v chromedriver || true)
if [ -z "$drv" ] || [ ! -x /usr/bin/chromium ] || ! command -v python3 >/dev/null; then
  echo "chromium, chromium-driver or python3 missing (bash scripts/setup.sh installs them)"
  [ "${HC_SANDBOX_REQUIRE_BROWSER:-}" = 1 ] && exit 1
  exit 77
fi
tmp=$(mktemp -d /tmp/hc-sb-browser.XXXXXX)
sbpid=""; drvpid=""
cleanup() {
  [ -n "$sbpid" ] && kill "$sbpid" 2>/dev/null && wait "$sbpid" 2>/dev/null
  [ -n "$drvpid" ] && kill "$drvpid" 2>/dev/null && wait "$drvpid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

# wait_port FILE SED-REGEX PID: the port a starting program prints, or "" if it died / 30 s
wait_port() {
  for _ in $(seq 1 300); do
    p=$(sed -n "s/$2/\\1/p" "$1" 2>/dev/null)
    [ -n "$p" ] && { echo "$p"; return; }
    kill -0 "$3" 2>/dev/null || return
    sleep 0.1
  done
}

"$b/sandbox/hcpg-sandbox" --profile postgres --dsn "$HC_TEST_DSN dbname=$HC_TEST_DB" --port 0 \
  >"$tmp/sandbox.log" 2>&1 &
sbpid=$!
port=$(wait_port "$tmp/sandbox.log" '.*listening on 127.0.0.1 port \([0-9]*\).*' "$sbpid")
[ -n "$port" ] || { echo "FAIL: the sandbox did not start"; cat "$tmp/sandbox.log"; exit 1; }

"$drv" --port=0 --log-path="$tmp/driver.log" >"$tmp/driver.out" 2>&1 &
drvpid=$!
dport=$(wait_port "$tmp/driver.out" '.*was started successfully on port \([0-9]*\).*' "$drvpid")
[ -n "$dport" ] || { echo "FAIL: chromedriver did not start"; cat "$tmp/driver.out"; exit 1; }

mkdir -p "$(dirname "$shot")"
python3 "$src/sandbox/tests/integration/browser_test.py" "http://127.0.0.1:$port" \
  "http://127.0.0.1:$dport" "$shot" || { echo "---- sandbox log"; cat "$tmp/sandbox.log"; exit 1; }
# a clean stop (SIGTERM is handled): exit 0, and under sanitizers no leak or race report
kill "$sbpid"; wait "$sbpid"; rc=$?; sbpid=""
[ $rc = 0 ] || { echo "FAIL: hcpg-sandbox exited $rc after SIGTERM"; cat "$tmp/sandbox.log"; exit 1; }
