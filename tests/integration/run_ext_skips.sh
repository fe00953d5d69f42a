#!/usr/bin/env bash
# The extension's shell tests skip, with the reason, on a server that cannot run them, and
# fail instead under CI=true (CI's cluster must run them): replication.sh on a server with
# wal_level = replica (the default of a stock cluster).  A private cluster (started here,
# restarted once with wal_level = replica), never the shared one.
set -u
src=${HC_SRCDIR:?HC_SRCDIR unset (run through make check)}
# the library is not involved: once is enough (the plain build runs it)
if [ -n "${HC_INSTRUMENTED:-}" ]; then echo "SKIP: runs in the plain build only"; exit 77; fi
dir=$(mktemp -d /tmp/hc-skip-pg.XXXXXX)
trap 'bash "$src/tests/pgcluster.sh" stop "$dir"' EXIT
envlines=$(bash "$src/tests/pgcluster.sh" start "$dir"); rc=$?
if [ "$rc" = 3 ]; then echo "SKIP: no PostgreSQL server binaries here"; exit 77; fi
[ "$rc" = 0 ] || { echo "FAIL: cannot start a private cluster"; exit 1; }
while IFS= read -r line; do export "${line?}"; done <<<"$envlines"
psql -XqAt -d postgres -c "ALTER SYSTEM SET wal_level = replica" || { echo "FAIL: ALTER SYSTEM"; exit 1; }
bash "$src/tests/pgcluster.sh" ctl "$dir" stop && bash "$src/tests/pgcluster.sh" ctl "$dir" start \
  || { echo "FAIL: restart of the private cluster"; exit 1; }
[ "$(psql -XqAt -d postgres -c 'SHOW wal_level')" = replica ] || { echo "FAIL: wal_level is not replica"; exit 1; }

out=$(env -u CI bash "$src/extension/test/replication.sh" 2>&1); rc=$?
echo "$out"
[ "$rc" = 0 ] || { echo "FAIL: replication.sh outside CI exits $rc on wal_level = replica"; exit 1; }
echo "$out" | grep -q "replication test ... SKIP: the server has wal_level = replica" \
  || { echo "FAIL: no SKIP line naming the reason"; exit 1; }

out=$(CI=true bash "$src/extension/test/replication.sh" 2>&1); rc=$?
echo "$out"
[ "$rc" != 0 ] || { echo "FAIL: replication.sh under CI=true succeeds on wal_level = replica"; exit 1; }
echo "$out" | grep -q "FAILED: the server has wal_level = replica" \
  || { echo "FAIL: under CI=true the failure does not say why"; exit 1; }
[ "$(psql -XqAt -d postgres -c "SELECT count(*) FROM pg_database WHERE datname LIKE 'hc_repl_%'")" = 0 ] \
  || { echo "FAIL: replication.sh left databases behind"; exit 1; }
echo "replication.sh: SKIP with the reason outside CI, a failure under CI=true"
