#!/bin/sh
# hcpg against the test database (run by tests/with-pg.sh): `listen --count 3`
# prints three NOTIFYs decoded (one of them malformed), `stats` prints the
# extension, the watched tables and the notify queue usage, `keys` escapes
# offline; usage errors exit 2.
set -u
hcpg="${HC_BUILDDIR:-.}/tools/hcpg"
ci="$HC_TEST_DSN dbname=$HC_TEST_DB"
tmp=$(mktemp -d /tmp/hc-hcpg.XXXXXX)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$tmp"/*; do echo "--- $f"; cat "$f"; done; exit 1; }
psql_q() { psql "$ci" -XAtq -v ON_ERROR_STOP=1 "$@"; }

# ---- keys (offline)
out=$("$hcpg" keys user 'a:b') || fail "hcpg keys exited $?"
[ "$out" = "$(printf 'key user:a\\:b\ntable_tag user:*')" ] || fail "keys printed: $out"
out=$("$hcpg" keys order_item 7 '3*') || fail "hcpg keys (2 values) exited $?"
echo "$out" | grep -qx 'key order_item:7:3\\\*' || fail "keys printed: $out"

# ---- usage
"$hcpg" --help | grep -q '^usage: hcpg listen' || fail "--help"
"$hcpg" >/dev/null 2>&1; [ $? -eq 2 ] || fail "no args should exit 2"
"$hcpg" frobnicate x >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown command should exit 2"
"$hcpg" listen --count 0 "$ci" >/dev/null 2>&1; [ $? -eq 2 ] || fail "--count 0 should exit 2"
"$hcpg" keys user >/dev/null 2>&1; [ $? -eq 2 ] || fail "keys without a value should exit 2"
"$hcpg" stats --count 1 "$ci" >/dev/null 2>&1; [ $? -eq 2 ] || fail "stats --count should exit 2"
"$hcpg" stats "host=/nonexistent dbname=x" >/dev/null 2>"$tmp/err"; [ $? -eq 1 ] || fail "bad conninfo should exit 1"
grep -q '^hcpg: cannot connect' "$tmp/err" || fail "no connect error message"

# ---- listen: three notifications, one malformed; hcpg must be listening before they are sent
"$hcpg" listen --count 3 "$ci" >"$tmp/listen.out" 2>"$tmp/listen.err" &
pid=$!
i=0
until grep -qs 'listening on channel hydracache' "$tmp/listen.err"; do
  i=$((i + 1)); [ $i -gt 300 ] && fail "hcpg listen did not start"
  kill -0 "$pid" 2>/dev/null || fail "hcpg listen died"
  sleep 0.1
done
psql_q -c "SELECT pg_notify('hydracache', 'hc1 db t user:42 user:*')" >/dev/null || fail "notify 1"
psql_q -c "SELECT pg_notify('hydracache', 'hc1 node-7 k a%20b%25c x%0Ay')" >/dev/null || fail "notify 2"
psql_q -c "SELECT pg_notify('hydracache', 'hc2 db t nope')" >/dev/null || fail "notify 3"
wait "$pid"; rc=$?; pid=""
[ $rc -eq 0 ] || fail "hcpg listen exited $rc"
[ "$(wc -l <"$tmp/listen.out")" -eq 3 ] || fail "expected 3 lines"
sed -n 1p "$tmp/listen.out" | grep -qx 'origin=db op=tags user:42 user:\*' || fail "line 1"
sed -n 2p "$tmp/listen.out" | grep -qx 'origin=node-7 op=keys "a b%c" "x\\ny"' || fail "line 2"
sed -n 3p "$tmp/listen.out" | grep -qx 'malformed: unknown version: "hc2 db t nope"' || fail "line 3"

# ---- listen stops cleanly on SIGTERM and SIGINT
for sig in TERM INT; do
  "$hcpg" listen --channel "other $sig" "$ci" >"$tmp/$sig.out" 2>"$tmp/$sig.err" &
  pid=$!
  i=0
  until grep -qs "listening on channel other $sig" "$tmp/$sig.err"; do
    i=$((i + 1)); [ $i -gt 300 ] && fail "hcpg listen --channel did not start"
    sleep 0.1
  done
  kill -"$sig" "$pid"; wait "$pid"; rc=$?; pid=""
  [ $rc -eq 0 ] || fail "hcpg listen exited $rc on SIG$sig"
done

# ---- stats
if psql_q -c "CREATE EXTENSION IF NOT EXISTS hydracache" >/dev/null 2>&1; then
  psql_q -c "CREATE TABLE items (id int PRIMARY KEY, name text)" \
         -c "SELECT hydracache.watch('items', 'item', collection => 'items')" >/dev/null || fail "watch"
  "$hcpg" stats "$ci" >"$tmp/stats.out" 2>"$tmp/stats.err" || fail "hcpg stats exited $?"
  grep -q '^extension hydracache [0-9]' "$tmp/stats.out" || fail "no extension line"
  grep -qx 'watched_tables 1' "$tmp/stats.out" || fail "no watched_tables line"
  grep -qx 'watched items entity=item key=id collection=items columns=\*' "$tmp/stats.out" \
    || fail "no watched line"
else
  "$hcpg" stats "$ci" >"$tmp/stats.out" 2>"$tmp/stats.err" || fail "hcpg stats exited $?"
  grep -qx 'extension hydracache not installed' "$tmp/stats.out" || fail "no extension line"
fi
grep -Eq '^notify_queue_usage [0-9]' "$tmp/stats.out" || fail "no queue usage line"
grep -Eq '^bus_connections [0-9]+ ' "$tmp/stats.out" || fail "no bus_connections line"
cat "$tmp/stats.out"
echo "hcpg: all checks passed"
