#!/usr/bin/env bash
# The demo: build, start a throwaway PostgreSQL 15 cluster, install the extension, and run
# examples/demo against it: miss -> hit -> UPDATE from psql -> invalidation -> reload, with stats.
#   scripts/demo.sh [--wal]   (--wal: invalidations through the WAL transport, docs/BUS.md)
set -euo pipefail
if [ "${1:-}" = --wal ]; then   # synchronous_commit on: a walsender sees a commit once it is flushed (docs/BUS.md)
  export HC_BUS_TRANSPORT=wal PGOPTIONS="-c hydracache.transport=wal -c synchronous_commit=on"
fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."
top=$(pwd)
bash scripts/setup.sh
make -s -C build/plain extension-install >/dev/null
pgdir=$(mktemp -d /tmp/hc-demo-pg.XXXXXX)
trap 'bash "$top/tests/pgcluster.sh" stop "$pgdir"' EXIT
envlines=$(bash tests/pgcluster.sh start "$pgdir")
while IFS= read -r line; do export "${line?}"; done <<<"$envlines"
./build/plain/examples/demo "$HC_TEST_DSN"
