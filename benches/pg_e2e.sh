#!/usr/bin/env bash
# End-to-end PostgreSQL benchmark: pgbench direct, through PgBouncer (session
# mode, the peer to beat) and through sqlgate (default runtime, one worker,
# and with a policy judging every statement), in one run, on one server.
#
#   bash benches/pg_e2e.sh [-T SECS] [-r REPEATS] [-m MODES]
#
# Uses the PostgreSQL server at $PGHOST:$PGPORT (default 127.0.0.1:5432) as
# $PGUSER (default postgres, password $PGPASSWORD), creates the database
# sqlgate_bench (pgbench scale 10), builds sqlgate in release mode, and
# prints the summary tables that BENCHMARKS.md quotes. Raw results go to
# bench-results/ (git-ignored).
set -euo pipefail
T=15 R=2 MODES="S_prepared_c1,S_prepared_c16,tpcb_prepared_c16,large10k_c4"
while [ $# -gt 0 ]; do
  case "$1" in
    -T) T=$2; shift 2;; -r) R=$2; shift 2;; -m) MODES=$2; shift 2;;
    *) echo "unknown arg $1" >&2; exit 2;;
  esac
done
HERE="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="$(cd "$HERE/../shared/bench" 2>/dev/null && pwd)" || { echo "needs ../shared/bench beside the project" >&2; exit 1; }
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres} PGPASSWORD=${PGPASSWORD:-postgres}
OUT="$HERE/bench-results/pg-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
DB=sqlgate_bench

cd "$HERE"
cargo build --release --quiet
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
bash "$BENCH/pg_bench.sh" -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d "$DB" --init -r 0 -o "$OUT" >/dev/null

# sqlgate: one target on the same server, one gateway user with the same
# password as the server user (pgbench sends one password). Two instances:
# the default runtime (one worker per CPU) and a single worker, which is
# what PgBouncer is.
SG_PORT=6439 SG1_PORT=6440
write_config() {  # PORT EXTRA
cat <<TOML
[gateway]
$2

[postgres]
listen = "127.0.0.1:$1"

[[target]]
name = "$DB"
kind = "postgres"
host = "$PGHOST"
port = $PGPORT
database = "$DB"
user = "$PGUSER"
password_env = "PGPASSWORD"
pool_size = 20

[[user]]
name = "$PGUSER"
password_env = "PGPASSWORD"
targets = ["$DB"]

# Recording is measured on its own (benches/recording_e2e.sh).
[recording]
enabled = false
TOML
}
write_config $SG_PORT "worker_threads = $(nproc)" >"$OUT/sqlgate.toml"
write_config $SG1_PORT "worker_threads = 1" >"$OUT/sqlgate-1w.toml"
# A third instance judges every statement: a policy that lets the bench
# user run pgbench's reads, writes and transactions.
SGP_PORT=6441
write_config $SGP_PORT "" >"$OUT/sqlgate-policy.toml"
printf '\n[policy]\nfiles = ["bench-policy.toml"]\n' >>"$OUT/sqlgate-policy.toml"
cat >"$OUT/bench-policy.toml" <<TOML
[[rule]]
name = "bench"
users = ["$PGUSER"]
targets = ["*"]
allow = ["read", "write", "tx", "session"]
TOML
RUST_LOG=warn "$HERE/target/release/sqlgate" serve --config "$OUT/sqlgate.toml" 2>"$OUT/sqlgate.log" &
SG_PID=$!
RUST_LOG=warn "$HERE/target/release/sqlgate" serve --config "$OUT/sqlgate-1w.toml" 2>"$OUT/sqlgate-1w.log" &
SG1_PID=$!
RUST_LOG=warn "$HERE/target/release/sqlgate" serve --config "$OUT/sqlgate-policy.toml" 2>"$OUT/sqlgate-policy.log" &
SGP_PID=$!
read -r PGB_PID PGB_PORT < <(bash "$BENCH/pgbouncer.sh" start -m session -d "$DB" -U "$PGUSER" -W "$PGPASSWORD" -H "$PGHOST" -P "$PGPORT")
trap 'kill $SG_PID $SG1_PID $SGP_PID 2>/dev/null; bash "$BENCH/pgbouncer.sh" stop' EXIT
for p in $SG_PORT $SG1_PORT $SGP_PORT; do
  for _ in $(seq 100); do pg_isready -q -h 127.0.0.1 -p $p && break; sleep 0.1; done
done
# A port taken by another process would be measured instead.
for pid in $SG_PID $SG1_PID $SGP_PID; do
  kill -0 "$pid" 2>/dev/null || { echo "a sqlgate instance did not start: see $OUT/*.log" >&2; exit 1; }
done

run() { bash "$BENCH/pg_bench.sh" -h 127.0.0.1 -U "$PGUSER" -d "$DB" -T "$T" -r 1 -m "$MODES" -o "$OUT" "$@"; }
for _ in $(seq "$R"); do  # interleaved, so that drift hits all three alike
  run -p "$PGPORT" -l direct
  run -p "$PGB_PORT" -l pgbouncer -P "$PGB_PID"
  run -p "$SG_PORT" -l sqlgate -P "$SG_PID"
  run -p "$SG1_PORT" -l sqlgate-1worker -P "$SG1_PID"
  run -p "$SGP_PORT" -l sqlgate-policy -P "$SGP_PID"
done
python3 "$BENCH/summarize.py" --base direct "$OUT"/direct.csv "$OUT"/pgbouncer.csv "$OUT"/sqlgate.csv "$OUT"/sqlgate-1worker.csv "$OUT"/sqlgate-policy.csv | tee "$OUT/summary.md"
echo "results: $OUT"
