#!/usr/bin/env bash
# Write overhead of the hydracache trigger (SPEC section 8, item 4).
# Starts a throwaway cluster (tests/pgcluster.sh), fills a 100k-row table, and runs pgbench
# (bench/write_overhead_update.sql: UPDATE of one random row by id) at 1 and 2 clients with
# the table
#   unwatched  - no trigger,
#   watched    - hydracache.watch() (C statement trigger, one NOTIFY per transaction),
#   plpgsql    - a plain PL/pgSQL row trigger calling pg_notify() per row,
# and writes bench/results/write_overhead.json (tps, average latency, ratio vs unwatched).
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
bindir=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
[ -x "$bindir/pgbench" ] || bindir=$(pg_config --bindir)
out="$here/results/write_overhead.json"
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
SQL

configure() {
  case "$1" in
    unwatched) psql -c "DROP TRIGGER IF EXISTS bench_notify ON bench_items" \
                    -c "SELECT hydracache.unwatch('bench_items')" >/dev/null ;;
    watched)   psql -c "DROP TRIGGER IF EXISTS bench_notify ON bench_items" \
                    -c "SELECT hydracache.watch('bench_items', 'item')" >/dev/null ;;
    plpgsql)   psql -c "SELECT hydracache.unwatch('bench_items')" \
                    -c "CREATE TRIGGER bench_notify AFTER UPDATE ON bench_items FOR EACH ROW EXECUTE FUNCTION bench_notify()" >/dev/null ;;
  esac
}

# run CLIENTS SCRIPT -> "tps latency_ms"
run() {
  local log
  log=$("$bindir/pgbench" -n -c "$1" -j "$1" -T "$duration" -f "$here/$2" 2>&1) \
    || { echo "$log" >&2; return 1; }
  local tps lat
  tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$log" | head -1)
  lat=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' <<<"$log" | head -1)
  echo "$tps $lat"
}

# Each configuration runs ROUNDS times, interleaved with the others so that drift in machine
# load hits all three alike; the median is reported, with every sample.
median() { tr ' ' '\n' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
configs="unwatched watched plpgsql"
runs=()
for workload in update update10; do
  script=write_overhead_$workload.sql
  for clients in 1 2; do
    declare -A tps_s=() lat_s=()
    for round in $(seq 1 "$rounds"); do
      for cfg in $configs; do
        configure "$cfg"
        "$bindir/pgbench" -n -c "$clients" -T 1 -f "$here/$script" >/dev/null 2>&1  # warm-up
        read -r tps lat <<<"$(run "$clients" "$script")"
        echo "workload=$workload clients=$clients round=$round config=$cfg tps=$tps latency_ms=$lat" >&2
        tps_s[$cfg]="${tps_s[$cfg]:-} $tps"
        lat_s[$cfg]="${lat_s[$cfg]:-} $lat"
      done
    done
    base=$(median <<<"${tps_s[unwatched]# }")
    for cfg in $configs; do
      tps=$(median <<<"${tps_s[$cfg]# }")
      lat=$(median <<<"${lat_s[$cfg]# }")
      ratio=$(awk -v a="$tps" -v b="$base" 'BEGIN { printf "%.3f", a / b }')
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
  echo "  \"statistic\": \"median over rounds\","
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
