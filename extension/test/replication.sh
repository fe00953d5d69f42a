#!/usr/bin/env bash
# Logical replication end to end: a write replicated into a watched table of a subscriber
# database must notify that database's listeners (the apply worker fires row-level triggers
# only, in replica mode: docs/EXTENSION.md, "Replication role").  Run by `make installcheck`
# in extension/ after the pg_regress and isolation suites, against PGHOST/PGPORT/PGUSER; the server needs
# wal_level = logical (tests/pgcluster.sh sets it).  Publisher and subscriber are two
# databases of that one server, so the slot is created separately (CREATE SUBSCRIPTION cannot
# create a slot on its own server).  Exits non-zero unless the listener gets exactly the
# expected payloads within 10 s each.  On a server without wal_level = logical it reports
# SKIP and succeeds, except under CI=true, where it fails.
set -euo pipefail

tag="hc_repl_$$"
pubdb="${tag}_pub"
subdb="${tag}_sub"
slot="${tag}_slot"
work=$(mktemp -d)
listener_pid=""

q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }

cleanup() {
  set +e
  if [ -n "$listener_pid" ]; then kill "$listener_pid" 2>/dev/null; wait "$listener_pid" 2>/dev/null; fi
  if [ -n "$(q postgres "SELECT 1 FROM pg_database WHERE datname = '$subdb'")" ]; then
    # Detach the subscription from the slot first: DROP SUBSCRIPTION would otherwise try to
    # drop it over a connection of its own.
    q "$subdb" "ALTER SUBSCRIPTION ${tag} DISABLE" >/dev/null 2>&1
    q "$subdb" "ALTER SUBSCRIPTION ${tag} SET (slot_name = NONE)" >/dev/null 2>&1
    q "$subdb" "DROP SUBSCRIPTION IF EXISTS ${tag}" >/dev/null 2>&1
  fi
  for _ in $(seq 1 100); do
    active=$(q postgres "SELECT active FROM pg_replication_slots WHERE slot_name = '$slot'")
    [ "$active" = "t" ] || break
    sleep 0.1
  done
  q postgres "SELECT pg_drop_replication_slot('$slot') FROM pg_replication_slots WHERE slot_name = '$slot'" >/dev/null
  q postgres "DROP DATABASE IF EXISTS $subdb WITH (FORCE)" >/dev/null 2>&1
  q postgres "DROP DATABASE IF EXISTS $pubdb WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "replication test FAILED: $*" >&2; exit 1; }

# Waits (up to 10 s) until the command's output equals the expected text.
wait_for() {
  local want=$1; shift
  for _ in $(seq 1 100); do
    [ "$("$@" 2>/dev/null)" = "$want" ] && return 0
    sleep 0.1
  done
  return 1
}

echo "+++ replication test (publication -> subscription -> NOTIFY) +++"
wal_level=$(q postgres 'SHOW wal_level')
if [ "$wal_level" != logical ]; then
  why="the server has wal_level = $wal_level; this test needs wal_level = logical (tests/pgcluster.sh sets it)"
  # CI's cluster has it: there a missing setting is a failure, not a skip
  [ "${CI:-}" = true ] && fail "$why"
  echo "replication test ... SKIP: $why"
  trap - EXIT; rm -rf "$work"; exit 0
fi

q postgres "CREATE DATABASE $pubdb"
q postgres "CREATE DATABASE $subdb"
q "$pubdb" "CREATE TABLE items (id int PRIMARY KEY, name text);
            INSERT INTO items VALUES (1, 'one');
            CREATE PUBLICATION ${tag} FOR TABLE items;"
q "$pubdb" "SELECT pg_create_logical_replication_slot('$slot', 'pgoutput')" >/dev/null
q "$subdb" "CREATE EXTENSION hydracache;
            CREATE TABLE items (id int PRIMARY KEY, name text);
            SELECT hydracache.watch('items', 'item');" >/dev/null
# The subscription connects from inside the server: give it the server's own socket and port,
# not this client's view (PGHOST/PGPORT may be a forwarded port: docker-compose's 54329).
sock=$(q postgres "SELECT trim(split_part(current_setting('unix_socket_directories'), ',', 1))")
conn="dbname=$pubdb user=$(q postgres 'SELECT current_user') port=$(q postgres 'SHOW port')"
conn="host=${sock:-127.0.0.1} $conn${PGPASSWORD:+ password=$PGPASSWORD}"
q "$subdb" "CREATE SUBSCRIPTION ${tag} CONNECTION '$conn' PUBLICATION ${tag}
            WITH (create_slot = false, slot_name = '$slot')"

# Wait for the initial copy to finish (state 'r'), so the writes below go through the apply
# worker proper (the table copy fires statement triggers, which would hide the bug).
wait_for r q "$subdb" "SELECT srsubstate FROM pg_subscription_rel" \
  || fail "the subscription's initial table sync did not finish"

# A listener on the subscriber: psql prints notifications after each command, so it keeps
# running a trivial query; "ready" shows its LISTEN is in effect.
{
  echo "LISTEN hydracache;"
  echo "SELECT 'ready';"
  for _ in $(seq 1 300); do echo "SELECT 1 WHERE false;"; sleep 0.1; done
} | psql -X -q -At -d "$subdb" >"$work/listener.out" 2>&1 &
listener_pid=$!
wait_for ready head -n 1 "$work/listener.out" || fail "the listener did not start"

# One transaction each on the publisher: UPDATE, INSERT, DELETE.
q "$pubdb" "UPDATE items SET name = 'uno' WHERE id = 1"
q "$pubdb" "INSERT INTO items VALUES (2, 'two')"
q "$pubdb" "DELETE FROM items WHERE id = 1"

expected='hc1 db t item:1 items
hc1 db t item:2 items
hc1 db t item:1 items'
received() { grep -o 'payload "[^"]*"' "$work/listener.out" | sed 's/^payload "//; s/"$//'; }
if ! wait_for "$expected" received; then
  echo "expected payloads:" >&2; echo "$expected" >&2
  echo "received:" >&2; received >&2 || true
  fail "replicated writes did not notify the subscriber's listener"
fi
[ "$(q "$subdb" "SELECT count(*) FROM items")" = 1 ] || fail "replication did not apply the writes"
echo "replication test ... ok"
