#!/usr/bin/env bash
# Write overhead of the hydracache trigger: what watching a table costs its writers (the
# target in docs/BENCHMARKS.md: at most 5% TPS lost, and less than a PL/pgSQL pg_notify trigger).
# Starts a throwaway cluster (tests/pgcluster.sh), fills a 100k-row table, and runs pgbench
# (bench/write_overhead_update.sql: UPDATE of one random row by id) at 1 and 2 clients with
# the table
#   unwatched  - no trigger,
#   watched    - hydracache.watch() (C statement trigger, one NOTIFY per transaction),
#   plpgsql    - a plain PL/pgSQL row trigger calling pg_notify() per row,
#   wal        - hydracache.watch() with hydracache.transport = wal (one transactional logical
#                decoding message per transaction instead of NOTIFY), while one hc_pg_bus with
#                the WAL transport streams it (bench_consumer: design a of issue 11),
#   trigger    - hydracache.watch() with hydracache.enabled = off: the triggers run, nothing is
#                sent (the floor of design a),
#   walrl      - as wal, but the consumer is pg_recvlogical (messages on, empty publication):
#                the walsender's work without the client's,
#   walpub     - no trigger; the table is in a publication streamed by a logical replication
#                consumer (pg_recvlogical, pgoutput): what a client deriving keys from pgoutput
#                row changes would cost the writers (design b, not implemented),
# watched and plpgsql run with one hc_pg_bus LISTENing (NOTIFY transport), as in production.
# and writes bench/results/write_overhead.json (tps, average latency, ratio vs unwatched).
# CONFIGS="unwatched wal" restricts the configurations, WORKLOADS="update" the workloads,
# MODE=prepared runs pgbench -M prepared,
# SYNC=on runs with synchronous_commit = on (the throwaway cluster defaults to off), ROUNDS and
# DURATION override the defaults, OUT the result file.
# A second workload (bench/write_overhead_update10.sql) runs ten such UPDATEs per transaction,
# where the PL/pgSQL trigger sends ten notifications and hydracache one.
# Needs the extension installed (make -C extension install).
#   usage: bench/write_overhead.sh [--quick]
#   (default: 3 interleaved rounds of 10 s per run, median reported; --quick: 1 round of 1 s)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
duration=10
rounds=3
[ "${1:-}" = --quick ] && { duration=1; rounds=1; }
duration=${DURATION:-$duration}; rounds=${ROUNDS:-$rounds}
sync=${SYNC:-off}
mode=${MODE:-simple}  # pgbench query protocol: simple or prepared
bindir=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
[ -x "$bindir/pgbench" ] || bindir=$(pg_config --bindir)
out=${OUT:-$here/results/write_overhead.json}
mkdir -p "$here/results"

dir=$(mktemp -d /tmp/hc-bench.XXXXXX)
trap 'bash "$here/../tests/pgcluster.sh" stop "$dir"' EXIT
envlines=$(bash "$here/../tests/pgcluster.sh" start "$dir")
while IFS= read -r line; do export "${line?}"; done <<<"$envlines"

psql() { PGOPTIONS="-c client_min_messages=warning" "$bindir/psql" -XAtq -v ON_ERROR_STOP=1 "$@"; }
psql <<'SQL'
CREATE EXTENSION hydracache;
CREATE TABLE bench_items (id int PRIMARY KEY, v int NOT NULL, name text NOT NULL);
INSERT INTO bench_items SELECT g, 0, 'item ' || g FROM generate_series(1, 100000) g;
VACUUM ANALYZE bench_items;
CREATE FUNCTION bench_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('hydracache', 'hc1 db t item:' || OLD.id || ' bench_items');
  RETURN NULL;
END $$;
CREATE PUBLICATION bench_pub;
SQL
psql -c "ALTER SYSTEM SET synchronous_commit = $sync" -c "SELECT pg_reload_conf()" >/dev/null

# The consumer of a configuration: bench_consumer (one hc_pg_bus, NOTIFY or WAL transport) or,
# for walpub, pg_recvlogical streaming the publication with pgoutput.
builddir=${HC_BUILDDIR:-$here/../build/plain}
consumer_bin=$builddir/bench/bench_consumer
[ -x "$consumer_bin" ] || { echo "build bench/bench_consumer first (make bench-programs)" >&2; exit 1; }
export HC_TEST_DSN="host=$PGHOST port=$PGPORT user=$PGUSER dbname=$PGDATABASE" HC_TEST_DB=$PGDATABASE  # this cluster, not the caller's
consumer_pid=; consumer_slot=
consumer_start() {  # notify|wal|recvlogical
  if [ "$1" = recvlogical ]; then
    "$bindir/pg_recvlogical" -d "$PGDATABASE" -S bench_slot --create-slot -P pgoutput >/dev/null
    "$bindir/pg_recvlogical" -d "$PGDATABASE" -S bench_slot --start -o proto_version=1 \
      -o publication_names=bench_pub -o messages=true -s 1 -F 1 -f /dev/null &
    consumer_pid=$!; consumer_slot=bench_slot
  else
    coproc CONSUMER { exec "$consumer_bin" "$1" 1; }
    consumer_pid=$CONSUMER_PID
    read -r ready <&"${CONSUMER[0]}"; [ "$ready" = ready ] || { echo "consumer failed" >&2; exit 1; }
  fi
}
consumer_stop() {
  [ -n "$consumer_pid" ] || return 0
  kill "$consumer_pid" 2>/dev/null; wait "$consumer_pid" 2>/dev/null || true
  consumer_pid=
  [ -z "$consumer_slot" ] || psql -c "SELECT pg_drop_replication_slot('$consumer_slot')" >/dev/null
  consumer_slot=
}
trap 'consumer_stop; bash "$here/../tests/pgcluster.sh" stop "$dir"' EXIT

configure() {
  consumer_stop
  psql -c "DROP PUBLICATION bench_pub" -c "CREATE PUBLICATION bench_pub" >/dev/null
  export PGOPTIONS="-c hydracache.transport=notify"
  case "$1" in
    unwatched) psql -c "DROP TRIGGER IF EXISTS bench_notify ON bench_items" \
                    -c "SELECT hydracache.unwatch('bench_items')" >/dev/null ;;
    watched)   psql -c "DROP TRIGGER IF EXISTS bench_notify ON bench_items" \
                    -c "SELECT hydracache.watch('bench_items', 'item')" >/dev/null
               consumer_start notify ;;
    plpgsql)   psql -c "SELECT hydracache.unwatch('bench_items')" \
                    -c "CREATE TRIGGER bench_notify AFTER UPDATE ON bench_items FOR EACH ROW EXECUTE FUNCTION bench_notify()" >/dev/null
               consumer_start notify ;;
    wal)       psql -c "DROP TRIGGER IF EXISTS bench_notify ON bench_items" \
                    -c "SELECT hydracache.watch('bench_items', 'item')" >/dev/null
               export PGOPTIONS="-c hydracache.transport=wal"
               consumer_start wal ;;
    trigger)   psql -c "DROP TRIGGER IF EXISTS bench_notify ON bench_items" \
                    -c "SELECT hydracache.watch('bench_items', 'item')" >/dev/null
               export PGOPTIONS="-c hydracache.enabled=off" ;;
    walrl)     psql -c "DROP TRIGGER IF EXISTS bench_notify ON bench_items" \
                    -c "SELECT hydracache.watch('bench_items', 'item')" >/dev/null
               export PGOPTIONS="-c hydracache.transport=wal"
               consumer_start recvlogical ;;
    walpub)    psql -c "DROP TRIGGER IF EXISTS bench_notify ON bench_items" \
                    -c "SELECT hydracache.unwatch('bench_items')" \
                    -c "ALTER PUBLICATION bench_pub ADD TABLE bench_items" >/dev/null
               consumer_start recvlogical ;;
  esac
}

# run CLIENTS SCRIPT -> "tps latency_ms"
run() {
  local log
  log=$("$bindir/pgbench" -n -M "$mode" -c "$1" -j "$1" -T "$duration" -f "$here/$2" 2>&1) \
    || { echo "$log" >&2; return 1; }
  local tps lat
  tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$log" | head -1)
  lat=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' <<<"$log" | head -1)
  echo "$tps $lat"
}

# Each configuration runs ROUNDS times, interleaved with the others so that drift in machine
# load hits all three alike; the median is reported, with every sample.
median() { tr ' ' '\n' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
configs=${CONFIGS:-unwatched watched plpgsql wal walpub}
runs=()
for workload in ${WORKLOADS:-update update10}; do
  script=write_overhead_$workload.sql
  for clients in 1 2; do
    declare -A tps_s=() lat_s=()
    for round in $(seq 1 "$rounds"); do
      order=$configs
      [ $((round % 2)) -eq 0 ] && order=$(tr ' ' '\n' <<<"$configs" | tac | tr '\n' ' ')
      for cfg in $order; do
        configure "$cfg"
        psql -c CHECKPOINT >/dev/null
        "$bindir/pgbench" -n -M "$mode" -c "$clients" -T 1 -f "$here/$script" >/dev/null 2>&1  # warm-up
        load0=$(cut -d' ' -f1 /proc/loadavg)
        read -r tps lat <<<"$(run "$clients" "$script")"
        echo "workload=$workload clients=$clients round=$round config=$cfg tps=$tps latency_ms=$lat load1=$load0->$(cut -d' ' -f1 /proc/loadavg)" >&2
        tps_s[$cfg]="${tps_s[$cfg]:-} $tps"
        lat_s[$cfg]="${lat_s[$cfg]:-} $lat"
      done
    done
    for cfg in $configs; do
      tps=$(median <<<"${tps_s[$cfg]# }")
      lat=$(median <<<"${lat_s[$cfg]# }")
      ratio=$(paste -d' ' <(tr ' ' '\n' <<<"${tps_s[$cfg]# }") <(tr ' ' '\n' <<<"${tps_s[unwatched]# }") \
              | awk '{ printf "%.4f\n", $1 / $2 }' | median)
      ratio=$(awk -v r="$ratio" 'BEGIN { printf "%.3f", r }')
      samples=$(tr ' ' ',' <<<"${tps_s[$cfg]# }")
      runs+=("{\"workload\": \"$workload\", \"config\": \"$cfg\", \"clients\": $clients, \"tps\": $tps, \"latency_ms_avg\": $lat, \"ratio_vs_unwatched\": $ratio, \"tps_samples\": [$samples]}")
    done
    unset tps_s lat_s
  done
done

{
  echo "{"
  echo "  \"benchmark\": \"write_overhead\","
  echo "  \"workloads\": {\"update\": \"one UPDATE of a random row by id per transaction\", \"update10\": \"ten such UPDATEs per transaction\"},"
  echo "  \"table_rows\": 100000,"
  echo "  \"duration_s\": $duration,"
  echo "  \"rounds\": $rounds,"
  echo "  \"statistic\": \"median over rounds; ratio = median of per-round tps / unwatched tps of the same round\","
  echo "  \"synchronous_commit\": \"$sync\","
  echo "  \"pgbench_protocol\": \"$mode\","
  echo "  \"server\": \"$("$bindir/postgres" --version)\","
  echo "  \"runs\": ["
  for i in "${!runs[@]}"; do
    sep=","; [ "$i" -eq $((${#runs[@]} - 1)) ] && sep=""
    echo "    ${runs[$i]}$sep"
  done
  echo "  ]"
  echo "}"
} >"$out"
echo "wrote $out" >&2
