#!/usr/bin/env bash
# The full test run (what CI runs): set up and build, start ONE throwaway PostgreSQL 15
# cluster, install the extension, then run every suite:
#   1. plain build: unit + integration suites, pg_regress + isolation suites of the extension
#   2. ASan/UBSan build: unit + integration suites
#   3. TSan build: unit + integration suites
#   4. valgrind memcheck over the unit suites
#   5. benchmark smoke run (bench --quick: proves the benchmarks still run; no timing verdicts)
#   6. libFuzzer targets (wire parser, PGresult codec, key escaping), 20 s each
#   7. make distcheck: the release tarball configures, builds, passes make check, installs and
#      uninstalls (--disable-extension: the extension is already installed by step 1)
# The cluster is torn down on exit, failure or interrupt.  Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
top=$(pwd)
jobs=$(nproc)
# This is the CI run: suites that may SKIP on a developer's server (replication.sh without
# wal_level = logical) must run here and fail if they cannot.
export CI=${CI:-true}

bash scripts/setup.sh || { echo "setup failed"; exit 1; }
# extension/test/moneykey.sh needs a locale that prints money unlike C (de_DE: "12,50 €")
if ! locale -a 2>/dev/null | grep -qiE '^de_DE\.utf-?8$'; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO localedef -i de_DE -f UTF-8 de_DE.UTF-8 || echo "cannot generate the de_DE.UTF-8 locale"
fi
export HC_SANDBOX_REQUIRE_BROWSER=1   # setup installed chromium: the console's browser test must run

pgdir=$(mktemp -d /tmp/hc-ci-pg.XXXXXX)
trap 'bash "$top/tests/pgcluster.sh" stop "$pgdir"' EXIT
trap 'exit 130' INT TERM
envlines=$(bash tests/pgcluster.sh start "$pgdir") || { echo "cannot start PostgreSQL"; exit 1; }
while IFS= read -r line; do export "${line?}"; done <<<"$envlines"
echo "== PostgreSQL $(psql "$HC_TEST_DSN" -XAtc 'SHOW server_version') on $PGHOST port $PGPORT"

passed=0; failed=0; failures=()
count_suite() { # $1 = label, $2 = build dir, $3 = make exit code
  local log="$2/test-suite.log" p=0 f=0
  if [ -f "$log" ]; then
    p=$(sed -n 's/^# PASS: *//p' "$log" | head -1); f=$(sed -n 's/^# FAIL: *//p' "$log" | head -1)
    e=$(sed -n 's/^# ERROR: *//p' "$log" | head -1); f=$(( ${f:-0} + ${e:-0} ))
  fi
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
  if [ "$3" != 0 ]; then
    [ "${f:-0}" -gt 0 ] || failed=$((failed + 1))
    failures+=("$1"); [ -f "$log" ] && grep -E '^(FAIL|ERROR):' "$log" | head -20
    for l in $(grep -lE '^(FAIL|ERROR)' "$2"/tests/*/*.log 2>/dev/null | head -5); do echo "---- $l"; tail -40 "$l"; done
  fi
}

echo "== [1/7] plain build: make check (unit, integration, extension regress + isolation)"
make -C build/plain -j"$jobs" check >/tmp/hc-check-plain.out 2>&1; rc=$?
grep -E '^(PASS|FAIL|ERROR|SKIP|XFAIL|XPASS):|^test |^ok |^not ok|tests? (passed|failed)|^replication test \.' /tmp/hc-check-plain.out | grep -v '^PASS' || true
[ $rc = 0 ] || { tail -60 /tmp/hc-check-plain.out; for f in extension/regression.diffs extension/output_iso/regression.diffs; do [ -f "$f" ] && head -80 "$f"; done; }
count_suite plain "$top/build/plain" $rc
# the extension's pg_regress/isolation suites are not in test-suite.log: count them from their output
ext_ok=$(grep -cE '^(ok|test) .* ok|^ok [0-9]+' /tmp/hc-check-plain.out || true)
passed=$((passed + ext_ok))

for san in "address,undefined" "thread"; do
  name=$( [ "$san" = thread ] && echo tsan || echo asan )
  echo "== [$([ $name = asan ] && echo 2 || echo 3)/7] $name build: make check"
  mkdir -p "build/$name"
  ( cd "build/$name" && { { [ -f Makefile ] && [ config.status -nt "$top/configure" ]; } \
        || "$top/configure" -q --disable-extension --with-actuator --enable-werror --enable-sanitizers="$san"; } \
      && make -j"$jobs" >/dev/null && make -j"$jobs" check ) >"/tmp/hc-check-$name.out" 2>&1; rc=$?
  grep -E '^(FAIL|ERROR):' "/tmp/hc-check-$name.out" || true
  [ $rc = 0 ] || tail -40 "/tmp/hc-check-$name.out"
  count_suite "$name" "$top/build/$name" $rc
done

echo "== [4/7] valgrind memcheck over the unit suites"
vg_fail=0; vg_pass=0
for t in build/plain/tests/unit/check_*; do
  [ -x "$t" ] && [ "${t%.c}" = "$t" ] && [ "${t%.log}" = "$t" ] && [ "${t%.trs}" = "$t" ] && [ "${t%.o}" = "$t" ] || continue
  if HC_SRCDIR="$top" HC_BUILDDIR="$top/build/plain" CK_FORK=no valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
        "$t" >"/tmp/hc-vg-$(basename "$t").out" 2>&1; then
    vg_pass=$((vg_pass + 1))
  else
    vg_fail=$((vg_fail + 1)); failures+=("valgrind:$t"); tail -30 "/tmp/hc-vg-$(basename "$t").out"
  fi
done
echo "valgrind: $vg_pass clean, $vg_fail with errors"
passed=$((passed + vg_pass)); failed=$((failed + vg_fail))

echo "== [5/7] benchmark smoke run"
if grep -q '^bench-quick:' build/plain/Makefile; then
  if make -C build/plain bench-quick >/tmp/hc-bench-quick.out 2>&1; then passed=$((passed + 1)); echo "bench smoke ok"
  else failed=$((failed + 1)); failures+=("bench-quick"); tail -30 /tmp/hc-bench-quick.out; fi
fi

echo "== [6/7] libFuzzer targets"
bash tests/fuzz/run.sh build/plain "${HC_FUZZ_SECONDS:-20}" | tee "${TMPDIR:-/tmp}/hc-fuzz.$$.out"; rc=${PIPESTATUS[0]}
passed=$((passed + $(grep -c "^fuzz: .* ok" "${TMPDIR:-/tmp}/hc-fuzz.$$.out" || true)))   # one pass per target
[ "$rc" = 0 ] || { failed=$((failed + 1)); failures+=("fuzz"); }

echo "== [7/7] make distcheck"
if make -C build/plain distcheck >/tmp/hc-distcheck.out 2>&1; then
  passed=$((passed + 1)); grep -E '^# (TOTAL|PASS|SKIP|FAIL):' /tmp/hc-distcheck.out; echo "distcheck ok"
else
  failed=$((failed + 1)); failures+=("distcheck"); grep -E '^(FAIL|ERROR):' /tmp/hc-distcheck.out; tail -40 /tmp/hc-distcheck.out
fi

echo
[ ${#failures[@]} -eq 0 ] || echo "failed parts: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] && [ ${#failures[@]} -eq 0 ]
