#!/usr/bin/env bash
# Memory per idle client session: N pgbench clients hold a session open
# through sqlgate while sleeping; the gateway's resident memory with them
# open, less its resident memory after a warm-up session, divided by N.
# (Both legs count: each session's server connection is the gateway's
# too. PgBouncer is not measured: ../shared/bench/pgbouncer.sh caps its
# clients at 100.)
#
#   bash benches/idle_sessions.sh [-n SESSIONS]
#
# Starts a throwaway PostgreSQL (initdb in a temp dir as the `postgres`
# user, max_connections above N) on port 5499, builds sqlgate in release
# mode, and prints the figures BENCHMARKS.md quotes.
set -euo pipefail
N=1000
while [ $# -gt 0 ]; do
  case "$1" in
    -n) N=$2; shift 2;;
    *) echo "unknown arg $1" >&2; exit 2;;
  esac
done
HERE="$(cd "$(dirname "$0")/.." && pwd)"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
DIR=$(mktemp -d /tmp/sqlgate-idle.XXXXXX)
chown postgres "$DIR"
PORT=5499 SG_PORT=6442
runuser -u postgres -- "$PGBIN/initdb" -D "$DIR/data" -A trust -U postgres >/dev/null
cat >>"$DIR/data/postgresql.conf" <<CONF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
max_connections = $((N + 50))
shared_buffers = 64MB
CONF
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/pg.log" -w start >/dev/null
cleanup() {
  [ -n "${SG_PID:-}" ] && kill "$SG_PID" 2>/dev/null || true
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT

cd "$HERE"
cargo build --release --quiet
export PGPASSWORD=idle-pw
cat >"$DIR/sqlgate.toml" <<TOML
[postgres]
listen = "127.0.0.1:$SG_PORT"

[[target]]
name = "idle"
kind = "postgres"
host = "127.0.0.1"
port = $PORT
database = "postgres"
user = "postgres"
password_env = "PGPASSWORD"
pool_size = $((N + 10))

[[user]]
name = "postgres"
password_env = "PGPASSWORD"
targets = ["idle"]

[recording]
enabled = false
TOML
RUST_LOG=warn "${SQLGATE_BIN:-$HERE/target/release/sqlgate}" serve --config "$DIR/sqlgate.toml" 2>"$DIR/sqlgate.log" &
SG_PID=$!
for _ in $(seq 100); do pg_isready -q -h 127.0.0.1 -p $SG_PORT && break; sleep 0.1; done

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
printf '\\sleep 15 s\nSELECT 1;\n' >"$DIR/idle.sql"
measure() {  # LABEL PORT PID DATABASE
  local label=$1 port=$2 pid=$3 db=$4 before during open
  # Warm-up: one session through, so that what every session shares
  # (pools, caches, the runtime's threads) is counted before.
  psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d "$db" -c "SELECT 1" >/dev/null
  before=$(rss_kib "$pid")
  pgbench -n -h 127.0.0.1 -p "$port" -U postgres -c "$N" -j 4 -t 1 -f "$DIR/idle.sql" "$db" >"$DIR/$label.pgbench" 2>&1 &
  local bench=$!
  # Wait until every client's session is open (each shows as a server
  # connection named by pgbench), then read the proxy's memory.
  for _ in $(seq 300); do
    open=$(psql -X -At -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -c \
      "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgbench'")
    [ "$open" -ge "$N" ] && break
    sleep 0.1
  done
  during=$(rss_kib "$pid")
  wait "$bench" || true
  echo "$label: $open of $N sessions open: RSS $before KiB -> $during KiB: $(( (during - before) / N )) KiB per session ($(( (during - before) * 1024 / N )) bytes)"
}
measure sqlgate "$SG_PORT" "$SG_PID" idle
