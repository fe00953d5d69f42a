#!/usr/bin/env bash
# Build the libFuzzer targets with clang and run each for a while.
#   tests/fuzz/run.sh BUILD_DIR [SECONDS]     (BUILD_DIR: a configured and built tree, for config.h
#                                             and libhcpg.a; SECONDS per target, default 20)
# Exits non-zero on the first crash, leak or property violation (the reproducer is in the cwd).
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B=$(cd "$1" && pwd); secs=${2:-20}
out=$(mktemp -d /tmp/hc-fuzz.XXXXXX)
trap 'rm -rf "$out"' EXIT
CC=${CLANG:-clang}
FLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I$B -I$src/libhcpg/include -I$src/libhcpg"
LIBS="$B/libhcpg/.libs/libhcpg.a -lpq -pthread -lm"
cd "$src"
$CC $FLAGS tests/fuzz/fuzz_wire.c libhcpg/wire.c libhcpg/alloc.c libhcpg/error.c -o "$out/fuzz_wire"
$CC $FLAGS -I"$(pg_config --includedir)" tests/fuzz/fuzz_pgcodec.c libhcpg/pgcodec.c libhcpg/pgrowview.c libhcpg/pgshape.c $LIBS -o "$out/fuzz_pgcodec"
$CC $FLAGS tests/fuzz/fuzz_key.c libhcpg/key.c $LIBS -o "$out/fuzz_key"
$CC $FLAGS tests/fuzz/fuzz_pgrepl.c libhcpg/pgrepl.c libhcpg/error.c -o "$out/fuzz_pgrepl"
for t in fuzz_wire:9000 fuzz_pgcodec:4096 fuzz_key:3000 fuzz_pgrepl:4096; do
  name=${t%%:*}; maxlen=${t#*:}
  mkdir -p "$out/corpus-$name"
  # libFuzzer writes new inputs to the first corpus directory, so the seeds stay untouched
  seeds=(); [ -d "$src/tests/fuzz/seeds/$name" ] && seeds=("$src/tests/fuzz/seeds/$name")
  if (cd "$out" && "./$name" -max_total_time="$secs" -max_len="$maxlen" -print_final_stats=1 \
        "corpus-$name" "${seeds[@]}" >"$out/$name.log" 2>&1); then
    echo "fuzz: $name ok ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/$name.log" | grep -o '[0-9]*$') runs in ${secs}s)"
  else
    echo "fuzz: $name FAILED"; tail -40 "$out/$name.log"; cp "$out"/crash-* . 2>/dev/null || true; exit 1
  fi
done
