#!/usr/bin/env bash
# Server CPU per WAL-transport consumer (issue 11): every consumer has its own walsender, which
# decodes all of the database's WAL.  Starts a throwaway cluster (tests/pgcluster.sh), watches a
# 100k-row table with hydracache.transport = wal, and for N = 1, 2, 4 consumers
# (bench/bench_consumer wal N: N hc_pg_bus instances) runs pgbench at a fixed 1,000 single-row
# UPDATE transactions/s, reading the CPU time (utime + stime, /proc/PID/stat) of every walsender
# and of the whole server before and after.  Rounds are interleaved (1 2 4 4 2 1 ...).
# Writes bench/results/wal_consumers.json.
#   usage: bench/wal_consumers.sh [--quick]   (DURATION, ROUNDS, OUT override)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
duration=10; rounds=3
[ "${1:-}" = --quick ] && { duration=2; rounds=1; }
duration=${DURATION:-$duration}; rounds=${ROUNDS:-$rounds}
bindir=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
out=${OUT:-$here/results/wal_consumers.json}
builddir=${HC_BUILDDIR:-$here/../build/plain}
consumer_bin=$builddir/bench/bench_consumer
[ -x "$consumer_bin" ] || { echo "build bench/bench_consumer first (make bench-programs)" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
hz=$(getconf CLK_TCK)

dir=$(mktemp -d /tmp/hc-bench.XXXXXX)
consumer_pid=
trap '[ -z "$consumer_pid" ] || kill "$consumer_pid" 2>/dev/null; bash "$here/../tests/pgcluster.sh" stop "$dir"' EXIT
envlines=$(bash "$here/../tests/pgcluster.sh" start "$dir")
while IFS= read -r line; do export "${line?}"; done <<<"$envlines"
export HC_TEST_DSN="host=$PGHOST port=$PGPORT user=$PGUSER dbname=$PGDATABASE" HC_TEST_DB=$PGDATABASE  # this cluster, not the caller's
psql() { PGOPTIONS="-c client_min_messages=warning" "$bindir/psql" -XAtq -v ON_ERROR_STOP=1 "$@"; }
psql <<'SQL'
CREATE EXTENSION hydracache;
CREATE TABLE bench_items (id int PRIMARY KEY, v int NOT NULL, name text NOT NULL);
INSERT INTO bench_items SELECT g, 0, 'item ' || g FROM generate_series(1, 100000) g;
VACUUM ANALYZE bench_items;
SELECT hydracache.watch('bench_items', 'item');
ALTER SYSTEM SET hydracache.transport = wal;
SELECT pg_reload_conf();
SQL

# CPU ticks of the given pids (summed).
ticks() { local t=0 p; for p in "$@"; do
  [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done; echo "$t"; }

results=()
order="0 1 2 4"
for round in $(seq 1 "$rounds"); do
  list=$order; [ $((round % 2)) -eq 0 ] && list=$(tr ' ' '\n' <<<"$order" | tac | tr '\n' ' ')
  for n in $list; do
    if [ "$n" -gt 0 ]; then
      coproc CONSUMER { exec "$consumer_bin" wal "$n"; }
      consumer_pid=$CONSUMER_PID
      read -r ready <&"${CONSUMER[0]}"; [ "$ready" = ready ] || { echo "consumers failed" >&2; exit 1; }
    fi
    walsenders=$(psql -c "SELECT string_agg(pid::text, ' ') FROM pg_stat_replication")
    srv=$(pgrep -d ' ' -P "$(head -1 "$dir/data/postmaster.pid")")
    load0=$(cut -d' ' -f1 /proc/loadavg)
    w0=$(ticks $walsenders); s0=$(ticks $srv)
    log=$("$bindir/pgbench" -n -c 1 -j 1 -R 1000 -T "$duration" -f "$here/write_overhead_update.sql" 2>&1)
    w1=$(ticks $walsenders); s1=$(ticks $srv)
    tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$log" | head -1)
    ws=$(awk -v a="$w0" -v b="$w1" -v hz="$hz" -v d="$duration" 'BEGIN { printf "%.4f", (b - a) / hz / d }')
    ss=$(awk -v a="$s0" -v b="$s1" -v hz="$hz" -v d="$duration" 'BEGIN { printf "%.4f", (b - a) / hz / d }')
    per=$(awk -v w="$ws" -v n="$n" 'BEGIN { printf "%.4f", n ? w / n : 0 }')
    echo "round=$round consumers=$n tps=$tps walsender_cpu=$ws per_consumer=$per server_cpu=$ss load1=$load0->$(cut -d' ' -f1 /proc/loadavg)" >&2
    results+=("{\"round\": $round, \"consumers\": $n, \"tps\": $tps, \"walsender_cpu_s_per_s\": $ws, \"per_consumer_cpu_s_per_s\": $per, \"server_cpu_s_per_s\": $ss}")
    if [ -n "$consumer_pid" ]; then kill "$consumer_pid"; wait "$consumer_pid" 2>/dev/null || true; consumer_pid=; fi
  done
done
{
  echo "{"
  echo "  \"benchmark\": \"wal_consumers\","
  echo "  \"what\": \"CPU seconds per second of the walsenders (and of the server processes that existed before pgbench connected: not its backend) while pgbench commits a fixed 1000 single-row UPDATEs/s on a watched table with hydracache.transport = wal, for 0, 1, 2, 4 WAL-transport consumers\","
  echo "  \"duration_s\": $duration, \"rounds\": $rounds, \"clk_tck\": $hz,"
  echo "  \"server\": \"$("$bindir/postgres" --version)\","
  echo "  \"runs\": ["
  for i in "${!results[@]}"; do sep=","; [ "$i" -eq $((${#results[@]} - 1)) ] && sep=""; echo "    ${results[$i]}$sep"; done
  echo "  ]"
  echo "}"
} >"$out"
echo "wrote $out" >&2
