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

free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 30000 ))
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
  port=${3:-$(free_port)}
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
max_replication_slots = 10
max_wal_senders = 10
CONF
  as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
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
