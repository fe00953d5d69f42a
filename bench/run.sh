#!/usr/bin/env bash
# Runs every benchmark scenario, each writing <scenario>.json (+ .md summary rows, .dat plot
# data) into the output dir, then (full run) the plots and docs/BENCHMARKS.md.
#   run.sh [--quick] [--out DIR]
#     --quick  smoke mode: about a second per scenario, results in a temp dir (or --out),
#              docs/BENCHMARKS.md untouched.  Proves the benchmarks still run; no verdicts.
#     --report redraw the plots and rewrite docs/BENCHMARKS.md from the results already in
#              the output dir (after re-running one program by hand); runs nothing.
# Environment: HC_SRCDIR / HC_BUILDDIR (set by `make bench`), and the database as the tests
# get it: HC_TEST_DSN (unix socket), HC_TEST_TCP_DSN (TCP), optional HC_TEST_DB.  Without
# HC_TEST_DSN a throwaway cluster is started (tests/pgcluster.sh) and torn down on exit.
# Exit status: non-zero when any scenario failed.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${HC_SRCDIR:-$(cd "$here/.." && pwd)}
build=${HC_BUILDDIR:-$src}

quick=""; out=""; report_only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=--quick ;;
    --report) report_only=1 ;;
    --out) out=${2:?--out needs a directory}; shift ;;
    *) echo "usage: $0 [--quick | --report] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done

pgdir=""; dbcreated=""; tmpout=""
cleanup() {
  if [ -n "$dbcreated" ]; then
    psql "$HC_TEST_DSN" -XAtq -c "DROP DATABASE IF EXISTS \"$dbcreated\" WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  if [ -n "$pgdir" ]; then bash "$src/tests/pgcluster.sh" stop "$pgdir"; fi
  if [ -n "$tmpout" ]; then rm -rf "$tmpout"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "$out" ]; then
  if [ -n "$quick" ]; then tmpout=$(mktemp -d /tmp/hc-bench-quick.XXXXXX); out=$tmpout
  else out=$src/bench/results; fi
fi
mkdir -p "$out"

if [ -n "$report_only" ]; then
  : # no database needed
elif [ -z "${HC_TEST_DSN:-}" ]; then
  pgdir=$(mktemp -d /tmp/hc-bench-pg.XXXXXX)
  envlines=$(bash "$src/tests/pgcluster.sh" start "$pgdir") || { echo "bench: cannot start PostgreSQL" >&2; exit 1; }
  while IFS= read -r line; do export "${line?}"; done <<<"$envlines"
fi
if [ -z "$report_only" ] && [ -z "${HC_TEST_DB:-}" ]; then
  HC_TEST_DB="hc_bench_$$"
  psql "$HC_TEST_DSN" -XAtq -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$HC_TEST_DB\"" >/dev/null || exit 1
  dbcreated=$HC_TEST_DB
  export HC_TEST_DB
fi
# psql/pgbench take PG* variables: point them at the benchmark database too.
export PGDATABASE=${HC_TEST_DB:-}
dbq() { [ -n "${HC_TEST_DSN:-}" ] && psql "$HC_TEST_DSN" -XAtq "$@"; }  # cluster-wide facts only
have_ext=$(dbq -c "SELECT count(*) FROM pg_available_extensions WHERE name = 'hydracache'" 2>/dev/null || echo 0)

failed=()
ran=()
run() { # $1 = scenario name, rest = command
  local name=$1; shift
  echo "== bench: $name ${quick:+(quick)}"
  local t0=$SECONDS
  if "$@"; then ran+=("$name"); echo "== bench: $name done in $((SECONDS - t0)) s"
  else failed+=("$name"); echo "== bench: $name FAILED" >&2; fi
}
skip() { echo "== bench: $1 skipped: $2"; printf '| %s | skipped: %s | - | - | - |\n' "$1" "$2" >"$out/$1.md"; }

prog() { echo "$build/bench/$1"; }
if [ -z "$report_only" ]; then
run local_get "$(prog bench_local)" $quick --out "$out"
run hit_ratio "$(prog bench_hitratio)" $quick --out "$out"
for p in bench_hit bench_memory bench_inval; do
  [ -x "$(prog $p)" ] || continue
  case $p in
    bench_inval) [ "$have_ext" = 1 ] || { skip invalidation "hydracache extension not installed"; continue; } ;;
  esac
  run "${p#bench_}" "$(prog $p)" $quick --out "$out"
done
# write_overhead.sh (the extension's) starts its own cluster and always writes
# $src/bench/results/write_overhead.json: keep the committed full-run file out of a quick run's
# reach, and copy the result into $out.
write_overhead() {
  local committed=$src/bench/results/write_overhead.json keep="" rc=0
  if [ -n "$quick" ] && [ -f "$committed" ]; then keep=$(mktemp); cp "$committed" "$keep"; fi
  bash "$src/bench/write_overhead.sh" $quick || rc=$?
  if [ $rc = 0 ] && [ "$committed" != "$out/write_overhead.json" ]; then cp "$committed" "$out/"; fi
  if [ -n "$keep" ]; then cp "$keep" "$committed"; rm -f "$keep"; fi
  return $rc
}
if [ -f "$src/bench/write_overhead.sh" ]; then
  if [ "$have_ext" = 1 ]; then
    run write_overhead write_overhead
  else
    skip write_overhead "needs the hydracache extension installed"
  fi
fi
fi # report_only

# Plots: also drawn in quick mode so that plot.gp cannot rot.
if command -v gnuplot >/dev/null; then
  run plots gnuplot -e "dir='$out'" "$src/bench/plot.gp"
else
  echo "== bench: plots skipped (no gnuplot; apt-get install gnuplot-nox)"
fi

# The write-overhead JSON comes from the extension's script (one run per line): summarise it
# with awk, so the table needs no JSON tool.
wo_row() {
  local f=$out/write_overhead.json
  [ -f "$f" ] || return 0
  awk '
    function field(line, name,   m) {
      if (match(line, "\"" name "\": *\"?[^,\"}]*")) {
        m = substr(line, RSTART, RLENGTH); sub(/^[^:]*: *"?/, "", m); return m
      }
      return ""
    }
    /"workload":/ {
      k = field($0, "workload") " " field($0, "clients")
      tps[k, field($0, "config")] = field($0, "tps"); lat[k, field($0, "config")] = field($0, "latency_ms_avg")
      if (!(k in seen)) { seen[k] = 1; order[++n] = k }
    }
    END {
      for (i = 1; i <= n; i++) {
        k = order[i]; split(k, a, " ")
        u = tps[k, "unwatched"]; w = tps[k, "watched"]; p = tps[k, "plpgsql"]
        if (u == "" || w == "" || p == "") continue
        loss = 100 * (1 - w / u); ploss = 100 * (1 - p / u)
        met = (loss <= 5 && w > p) ? "yes" : "**no**"
        printf "| write overhead, pgbench %s, %s client%s | watched %.0f TPS (%.3f ms) vs unwatched %.0f (%.3f ms) vs PL/pgSQL trigger %.0f (%.3f ms) | TPS loss %.1f%% (PL/pgSQL %.1f%%) | loss <= 5%% and below PL/pgSQL | %s |\n", \
          a[1], a[2], a[2] == 1 ? "" : "s", w, lat[k, "watched"], u, lat[k, "unwatched"], p, lat[k, "plpgsql"], loss, ploss, met
      }
    }' "$f"
}

table() {
  echo "| Scenario | Measured | Ratio | Target | Met |"
  echo "| --- | --- | --- | --- | --- |"
  for s in hit_latency local_get invalidation write_overhead memory hit_ratio; do
    if [ -f "$out/$s.md" ]; then cat "$out/$s.md"
    elif [ "$s" = write_overhead ]; then wo_row
    fi
  done
}

if [ -z "$quick" ]; then
  machine=$(sed -n 's/.*"cpu_model": "\(.*\)",*/\1/p' "$out/local_get.json" 2>/dev/null | head -1)
  {
    sed '/^<!-- results -->/q' "$src/docs/BENCHMARKS.md" 2>/dev/null || echo "<!-- results -->"
    echo
    if [ -z "$report_only" ] || [ ! -f "$out/run_info.txt" ]; then
      echo "Latest full run: $(date -u +%Y-%m-%d), $(nproc) CPUs (${machine:-unknown CPU}), $(uname -sr)," >"$out/run_info.txt"
      echo "$(${CC:-cc} --version 2>/dev/null | head -1), PostgreSQL $(dbq -c 'SHOW server_version' 2>/dev/null || echo '(unknown)')." >>"$out/run_info.txt"
    fi
    cat "$out/run_info.txt"
    echo
    table
    echo
    for png in hit_latency invalidation hit_ratio; do
      [ -f "$out/$png.png" ] && echo "![$png](../bench/results/$png.png)"
    done
    echo
    # Hand-written analysis below the generated part survives the next run.
    if grep -q '^<!-- end results -->' "$src/docs/BENCHMARKS.md" 2>/dev/null; then
      sed -n '/^<!-- end results -->/,$p' "$src/docs/BENCHMARKS.md"
    else
      echo "<!-- end results -->"
    fi
  } >"$out/BENCHMARKS.md.tmp"
  if [ "$out" = "$src/bench/results" ]; then mv "$out/BENCHMARKS.md.tmp" "$src/docs/BENCHMARKS.md"
  else mv "$out/BENCHMARKS.md.tmp" "$out/BENCHMARKS.md"; fi
else
  table
fi

echo "== bench: ran ${ran[*]:-nothing}; results in $out${tmpout:+ (removed on exit)}"
if [ ${#failed[@]} -gt 0 ]; then echo "== bench: FAILED: ${failed[*]}" >&2; exit 1; fi
exit 0
