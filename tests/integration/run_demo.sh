#!/bin/sh
# Runs examples/demo (the README's demo command) against the test database and checks
# the story: miss, hit, psql UPDATE -> invalidation from the database -> entry gone ->
# reload with the new value, then a libpq UPDATE -> invalidation -> reload.
set -u
out=$("${HC_BUILDDIR:-.}/examples/demo" "$HC_TEST_DSN dbname=$HC_TEST_DB" 2>&1) || {
  echo "demo failed"; echo "$out"; exit 1; }
echo "$out"
expect() {
  echo "$out" | grep -Eq "$1" || { echo "FAIL: no line matching: $1"; exit 1; }
}
expect '^miss +user:42 name=arthur '
expect 'stats: hits=0 misses=1 loads=1 '
expect '^hit +user:42 name=arthur '
expect 'stats: hits=1 misses=1 loads=1 '
expect '^notify +tag user:42 invalidated, origin=database'
expect '^gone +hc_contains\(user:42\) -> miss$'
expect '^reload +user:42 name=zaphod '
expect '^reload +user:42 name=trillian '
expect '^summary .*malformed=0 '
echo "demo: the whole story as expected"
