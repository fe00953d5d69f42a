#!/usr/bin/env bash
# Try HydraCache by hand: build (scripts/setup.sh) and start hcpg-sandbox, then open the
# console it prints (http://127.0.0.1:8089/demo/ui).  Ctrl-C stops it.
#   bash scripts/sandbox.sh                    # memory profile: no database needed
#   bash scripts/sandbox.sh postgres           # a throwaway PostgreSQL 15 cluster (removed on exit)
#   bash scripts/sandbox.sh postgres --dsn "host=... dbname=..."   # your database
# Further arguments go to hcpg-sandbox (--port, --bind, --token; see --help).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
profile=${1:-memory}
[ $# -gt 0 ] && shift
bash scripts/setup.sh
if [ "$profile" = postgres ]; then
  # the sandbox runs CREATE EXTENSION hydracache: install it into the server's directories
  make -s -C build/plain install-extension >/dev/null
fi
exec ./build/plain/sandbox/hcpg-sandbox --profile "$profile" "$@"
