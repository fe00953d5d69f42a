#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for tests and demos.
#   pgcluster.sh start DIR [PORT]  -> initdb + pg_ctl start in DIR (created), prints env lines
#   pgcluster.sh stop DIR          -> stops the cluster and removes DIR
#   pgcluster.sh ctl DIR stop|start -> pg_ctl stop (-m fast) / start of that cluster, keeping DIR
#                                     (for tests that restart a server: never the shared one)
# The cluster listens on a private unix socket dir (DIR/sock) and on 127.0.0.1:PORT
# (a free port is picked when PORT is not given). As root it runs as the `postgres` OS user,
# since initdb refuses to run as root. Never touches the system service.
set -euo pipefail

pg_bindir() {
  if [ -n "${PG_BINDIR:-}" ]; then echo "$PG_BINDIR"; return; fi
  if [ -x /usr/lib/postgresql/15/bin/initdb ]; then echo /usr/lib/postgresql/15/bin; return; fi
  pg_config --bindir
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A port below the kernel's ephemeral range (ip_local_port_range): there an outgoing connection's
# local port can never take it between this check and the server's bind (it did: "could not bind
# IPv4 address: Address already in use" in CI, a port in 32768-60999 held by some client socket).
free_port() {
  local p lo=32768
  read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
  [ "$lo" -gt 11024 ] 2>/dev/null || lo=32768
  for _ in $(seq 1 200); do
    p=$(( 10000 + RANDOM % (lo - 10000) ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
    exec 3>&- 2>/dev/null || true
  done
  echo "no free port found" >&2; return 1
}

cmd=${1:-}; dir=${2:-}
usage="usage: $0 start DIR [PORT] | stop DIR | ctl DIR stop|start"
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "$usage" >&2; exit 2; }
BIN=$(pg_bindir 2>/dev/null) || BIN=
# exit status 3: no PostgreSQL server binaries here (e.g. only a remote server is used)
[ -x "$BIN/initdb" ] && [ -x "$BIN/pg_ctl" ] \
  || { echo "no PostgreSQL server binaries (initdb, pg_ctl) in '${BIN}': set PG_BINDIR" >&2; exit 3; }

case "$cmd" in
start)
  # HC_PGCLUSTER_TRY_PORT: the first port to try, replaced like a picked one when it is taken
  # (tests/unit/run_pgcluster.sh makes it busy on purpose); PORT is used or fails.
  port=${3:-${HC_PGCLUSTER_TRY_PORT:-$(free_port)}}
  mkdir -p "$dir/sock"
  if [ "$(id -u)" = 0 ]; then chown -R postgres: "$dir"; chmod 755 "$dir"; fi
  as_owner "$BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/sock'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 128MB
log_min_messages = warning
wal_level = logical
max_replication_slots = 32
max_wal_senders = 32
CONF
  # A port picked here can still be taken before the server binds it (another cluster starting
  # at the same moment): then pick another, a few times, unless the caller chose the port.
  for attempt in 1 2 3 4 5; do
    if as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null; then
      break
    fi
    if [ -n "${3:-}" ] || [ "$attempt" = 5 ] || ! grep -q 'could not bind\|could not create any TCP/IP sockets' "$dir/server.log"; then
      cat "$dir/server.log" >&2; exit 1
    fi
    port=$(free_port) || exit 1
    echo "port = $port" >>"$dir/data/postgresql.conf" # the last setting wins
    : >"$dir/server.log"
  done
  echo "PGHOST=$dir/sock"
  echo "PGPORT=$port"
  echo "PGUSER=postgres"
  echo "PGDATABASE=postgres"
  echo "HC_TEST_DSN=host=$dir/sock port=$port user=postgres dbname=postgres"
  echo "HC_TEST_TCP_DSN=host=127.0.0.1 port=$port user=postgres dbname=postgres"
  ;;
stop)
  if [ -d "$dir/data" ]; then
    as_owner "$BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  ;;
ctl)
  action=${3:-}
  case "$action" in stop) mode=(-m fast) ;; start) mode=() ;; *) echo "$usage" >&2; exit 2 ;; esac
  [ -d "$dir/data" ] || { echo "$dir/data: no such cluster" >&2; exit 1; }
  as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" "${mode[@]}" -w -t 60 "$action" >/dev/null \
    || { tail -20 "$dir/server.log" >&2; exit 1; }
  ;;
*) echo "$usage" >&2; exit 2 ;;
esac
