#!/usr/bin/env bash
# tests/pgcluster.sh, which every suite's throwaway cluster comes from, must not fail when its
# port is taken between the pick and the server's bind (CI failed once so: "could not bind IPv4
# address ... Address already in use"). Checks: a picked port lies below the kernel's ephemeral
# range (no client socket's local port can hold it); a picked port found busy at bind time is
# replaced and the start succeeds; a port the caller chose is used or the start fails.
set -u
src=${HC_SRCDIR:?HC_SRCDIR unset (run through make check)}
pgc="$src/tests/pgcluster.sh"
if ! command -v python3 >/dev/null; then echo "SKIP: python3 needed to hold a port"; exit 77; fi
tmp=$(mktemp -d /tmp/hc-pgc.XXXXXX)
holder=""
cleanup() {
  [ -n "$holder" ] && kill "$holder" 2>/dev/null
  for d in "$tmp"/c*; do [ -d "$d" ] && bash "$pgc" stop "$d"; done
  rm -rf "$tmp"
}
trap cleanup EXIT
chmod 755 "$tmp"

# 1. a picked port is below the ephemeral range
bash "$pgc" start "$tmp/c1" >"$tmp/env1"; rc=$?
[ $rc = 3 ] && { echo "SKIP: no PostgreSQL server binaries"; exit 77; }
[ $rc = 0 ] || { echo "FAIL: pgcluster.sh start failed"; exit 1; }
port=$(sed -n 's/^PGPORT=//p' "$tmp/env1")
read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
[ "$port" -lt "$lo" ] || { echo "FAIL: picked port $port is in the ephemeral range (from $lo)"; exit 1; }
bash "$pgc" stop "$tmp/c1"

# 2. hold a port the way a client socket does (bound, not listening: a connect test finds it free)
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0))
open(sys.argv[1], "w").write(str(s.getsockname()[1])); time.sleep(120)
' "$tmp/port" &
holder=$!
for _ in $(seq 1 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
busy=$(cat "$tmp/port")
[ -n "$busy" ] || { echo "FAIL: could not hold a port"; exit 1; }
HC_PGCLUSTER_TRY_PORT=$busy bash "$pgc" start "$tmp/c2" >"$tmp/env2" 2>"$tmp/err2" \
  || { cat "$tmp/err2"; echo "FAIL: start failed when its first port was taken at bind time"; exit 1; }
port2=$(sed -n 's/^PGPORT=//p' "$tmp/env2")
[ -n "$port2" ] && [ "$port2" != "$busy" ] || { echo "FAIL: started on the busy port $busy?"; exit 1; }
PGHOST="$tmp/c2/sock" PGPORT=$port2 psql -XAtq -U postgres -d postgres -c 'SELECT 1' >/dev/null \
  || { echo "FAIL: the cluster on port $port2 does not answer"; exit 1; }
bash "$pgc" stop "$tmp/c2"

# 3. a port the caller chose is not replaced
if bash "$pgc" start "$tmp/c3" "$busy" >/dev/null 2>&1; then
  echo "FAIL: start on the caller's busy port $busy succeeded"; exit 1
fi
echo "pgcluster.sh: ports below the ephemeral range; a port taken at bind time is replaced ($busy -> $port2)"
