#!/usr/bin/env bash
# Key text of a money column does not depend on the writer's lc_monetary (docs/EXTENSION.md,
# "Key text"): the trigger renders keys with lc_monetary = C.  The isolation spec keytext.spec
# covers search_path, DateStyle and TimeZone, but its money half cannot tell a pinned
# lc_monetary from an unpinned one: C, C.utf8 and POSIX all print 12.5::money as $12.50.  This
# test needs a locale that prints money differently (scripts/test.sh generates de_DE.UTF-8,
# which prints "12,50 €"); a session under that locale writes a money key and must send the
# same payload as a session under C.  Without such a locale it reports SKIP and succeeds,
# except under CI=true, where it fails.  Run by `make installcheck` in extension/ against
# PGHOST/PGPORT/PGUSER.
set -euo pipefail

db="hc_moneykey_$$"
work=$(mktemp -d)
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
cleanup() {
  set +e
  q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "money key test FAILED: $*" >&2; exit 1; }

echo "+++ money key test (lc_monetary does not change key text) +++"
# A locale the server accepts for lc_monetary whose money text differs from C's.
c_text=$(q -d postgres -c "SET lc_monetary = 'C'" -c "SELECT 12.5::money")
loc=""
for l in de_DE.UTF-8 $(locale -a 2>/dev/null); do
  case $l in C | C.* | POSIX) continue ;; esac
  text=$(q -d postgres -c "SET lc_monetary = '$l'" -c "SELECT 12.5::money" 2>/dev/null) || continue
  if [ "$text" != "$c_text" ]; then loc=$l; break; fi
done
if [ -z "$loc" ]; then
  why="no installed locale prints money unlike C (try: localedef -i de_DE -f UTF-8 de_DE.UTF-8)"
  [ "${CI:-}" = true ] && fail "$why"
  echo "money key test ... SKIP: $why"
  exit 0
fi

q -d postgres -c "CREATE DATABASE $db" >/dev/null
q -d "$db" -c "CREATE EXTENSION hydracache" \
  -c "CREATE TABLE prices (price money PRIMARY KEY)" \
  -c "SELECT hydracache.watch('prices', 'price')" >/dev/null

# One session per locale; each LISTENs, so it receives its own transaction's notification
# (psql prints it after the command).  Returns the payloads, one per line.
payloads() {
  psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" \
    -c "LISTEN hydracache" -c "SET lc_monetary = '$1'" \
    -c "INSERT INTO prices VALUES (12.5)" -c "DELETE FROM prices" 2>&1 \
    | grep -o 'payload "[^"]*"' | sed 's/^payload "//; s/"$//'
}
from_c=$(payloads C)
from_loc=$(payloads "$loc")
echo "lc_monetary = C: $(q -d "$db" -c "SELECT 12.5::money")"
echo "lc_monetary = $loc: $(q -d "$db" -c "SET lc_monetary = '$loc'" -c "SELECT 12.5::money")"
echo "payloads under C:"; echo "$from_c"
echo "payloads under $loc:"; echo "$from_loc"
[ "$(echo "$from_c" | wc -l)" = 2 ] || fail "expected two payloads under C"
echo "$from_c" | grep -qF "price:$c_text" || fail "the key is not the C text $c_text"
[ "$from_c" = "$from_loc" ] || fail "the key text depends on lc_monetary"
echo "money key test ... ok"
