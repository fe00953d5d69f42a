#!/bin/sh
# The scenario suite in the postgres profile against the test database (with-pg.sh):
# the golden flow over the PostgreSQL bus, the seeded query demos, two nodes.
set -u
bin="${HC_BUILDDIR:-.}/sandbox/hcpg-sandbox"
src="${HC_SRCDIR:-.}/sandbox/scenarios"
out=$("$bin" --profile postgres --dsn "$HC_TEST_DSN dbname=$HC_TEST_DB" \
        --run "$src/golden.json" --run "$src/regression.json" --run "$src/postgres.json" 2>&1); rc=$?
echo "$out"
[ $rc = 0 ] || { echo "FAIL: the scenario suite failed in the postgres profile"; exit 1; }
if echo "$out" | grep -q SKIP; then echo "FAIL: something was skipped in the postgres profile"; exit 1; fi
echo "postgres scenarios: ok"
