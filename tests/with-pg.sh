#!/usr/bin/env bash
# Run a command with a PostgreSQL server available (the Automake LOG_COMPILER for every test).
#  - Tests outside tests/integration/ run as they are (the extension suites pass --always).
#  - With HC_TEST_DSN set, that server is used; otherwise a throwaway cluster is started in a
#    temp dir and torn down on exit, failure or interrupt.
#  - Integration tests get a fresh database of their own (HC_TEST_DB), dropped afterwards, so
#    suites sharing one server never see each other's tables or notifications.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
prog=${1:-}

case "$prog" in
  *integration/*|*regress/*|*extension*|--always) ;;
  *) exec "$@" ;;
esac
if [ "$prog" = --always ]; then shift; prog=${1:-}; fi

cleanup_dir=""
cleanup_db=""
# Tests that restart a server start a private cluster (hc_test_private_cluster_start) in
# HC_TEST_TMPDIR; whatever is left there when the test dies is stopped here.
HC_TEST_TMPDIR=$(mktemp -d /tmp/hc-t.XXXXXX) || exit 1
chmod 755 "$HC_TEST_TMPDIR" # as root the clusters run as `postgres`, which must reach them
export HC_TEST_TMPDIR
cleanup() {
  for d in "$HC_TEST_TMPDIR"/hc-pg.*; do
    if [ -d "$d" ]; then bash "$here/pgcluster.sh" stop "$d"; fi
  done
  rm -rf "$HC_TEST_TMPDIR"
  if [ -n "$cleanup_db" ]; then
    psql "$HC_TEST_DSN" -XAtq -c "DROP DATABASE IF EXISTS \"$cleanup_db\" WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  if [ -n "$cleanup_dir" ]; then bash "$here/pgcluster.sh" stop "$cleanup_dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${HC_TEST_DSN:-}" ]; then
  cleanup_dir=$(mktemp -d /tmp/hc-pg.XXXXXX)
  envlines=$(bash "$here/pgcluster.sh" start "$cleanup_dir") || exit 1
  while IFS= read -r line; do export "${line?}"; done <<<"$envlines"
fi

# pg_regress and psql take PG* variables, not a conninfo: derive them from a simple
# keyword=value HC_TEST_DSN (e.g. the docker-compose server) when they are not set.
if [ -z "${PGHOST:-}" ]; then
  for kv in $HC_TEST_DSN; do
    case "$kv" in
      host=*) export PGHOST="${kv#host=}" ;; port=*) export PGPORT="${kv#port=}" ;;
      user=*) export PGUSER="${kv#user=}" ;; password=*) export PGPASSWORD="${kv#password=}" ;;
      dbname=*) export PGDATABASE="${kv#dbname=}" ;;
    esac
  done
fi

if [ "${HC_TEST_NO_DB:-}" != 1 ]; then
  db="hc_t_$(basename "${prog%.*}" | tr -c 'a-zA-Z0-9_\n' '_')_$$"
  psql "$HC_TEST_DSN" -XAtq -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$db\"" >/dev/null || exit 1
  cleanup_db=$db
  export HC_TEST_DB=$db
fi
"$@"
