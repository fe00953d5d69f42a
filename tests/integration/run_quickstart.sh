#!/bin/sh
# Runs examples/quickstart against the test database (with-pg.sh provides it)
# and checks the story it prints: a miss, a hit without a load, then after the
# UPDATE + invalidation a reload showing the new name.
set -u
out=$("${HC_BUILDDIR:-.}/examples/quickstart" "$HC_TEST_DSN dbname=$HC_TEST_DB") || {
  echo "quickstart failed"; echo "$out"; exit 1; }
echo "$out"
expect() {
  echo "$out" | grep -Eq "$1" || { echo "FAIL: no line matching: $1"; exit 1; }
}
expect '^miss +name=arthur +hits=0 misses=1 loads=1 invalidations=0$'
expect '^hit +name=arthur +hits=1 misses=1 loads=1 invalidations=0$'
expect '^reload +name=zaphod +hits=1 misses=2 loads=2 invalidations=1$'
echo "quickstart: miss, hit, reload as expected"
