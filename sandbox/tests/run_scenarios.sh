#!/bin/sh
# The sandbox's scenario suite in the memory profile (hcpg-sandbox --run), and the exit
# status of a scenario whose assertion fails.
set -u
bin="${HC_BUILDDIR:-.}/sandbox/hcpg-sandbox"
src="${HC_SRCDIR:-.}/sandbox/scenarios"
"$bin" --profile memory --run "$src/golden.json" --run "$src/regression.json" --run "$src/postgres.json" \
  || { echo "FAIL: the scenario suite failed"; exit 1; }
tmp=$(mktemp /tmp/hc-sb-scen.XXXXXX)
trap 'rm -f "$tmp"' EXIT
cat >"$tmp" <<'JSON'
{"name": "must fail", "steps": [{"method": "GET", "path": "/ready", "expect": {"json": {"profile": "postgres"}}}]}
JSON
out=$("$bin" --run "$tmp" 2>&1); rc=$?
echo "$out"
[ $rc = 1 ] || { echo "FAIL: a failing assertion exited $rc, not 1"; exit 1; }
echo "$out" | grep -q 'profile: expected "postgres", got "memory"' || { echo "FAIL: no reason printed"; exit 1; }
echo '{"steps": [' >"$tmp"
"$bin" --run "$tmp" >/dev/null 2>&1; rc=$?
[ $rc = 1 ] || { echo "FAIL: a malformed file exited $rc, not 1"; exit 1; }
"$bin" --profile nope >/dev/null 2>&1; rc=$?
[ $rc = 2 ] || { echo "FAIL: a bad profile exited $rc, not 2"; exit 1; }
echo "scenarios: ok"
