#!/usr/bin/env bash
# What recording costs, end to end: pgbench direct, through sqlgate with a
# policy judging every statement and recording off, and the same with
# recording on (the SQLite store, group commit, writes durable before they
# run), in one run, on one server.
#
#   bash benches/recording_e2e.sh [-T SECS] [-r REPEATS] [-m MODES]
#
# Uses the PostgreSQL server at $PGHOST:$PGPORT (default 127.0.0.1:5432) as
# $PGUSER (default postgres, password $PGPASSWORD), creates the database
# sqlgate_bench (pgbench scale 10), builds sqlgate in release mode, and
# prints the summary tables BENCHMARKS.md quotes, and the recording
# instance's commits (fsync groups) per second. Raw results go to
# bench-results/ (git-ignored).
set -euo pipefail
T=15 R=2 MODES="S_prepared_c16,S_simple_c16,tpcb_prepared_c16"
while [ $# -gt 0 ]; do
  case "$1" in
    -T) T=$2; shift 2;; -r) R=$2; shift 2;; -m) MODES=$2; shift 2;;
    *) echo "unknown arg $1" >&2; exit 2;;
  esac
done
HERE="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="$(cd "$HERE/../shared/bench" 2>/dev/null && pwd)" || { echo "needs ../shared/bench beside the project" >&2; exit 1; }
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres} PGPASSWORD=${PGPASSWORD:-postgres}
OUT="$HERE/bench-results/rec-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
DB=sqlgate_bench

cd "$HERE"
cargo build --release --quiet
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
bash "$BENCH/pg_bench.sh" -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d "$DB" --init -r 0 -o "$OUT" >/dev/null

. "$HERE/benches/lib/pg_gateway.sh"
bench_policy "$PGUSER" >"$OUT/bench-policy.toml"
write_config() { gateway_config "$1" "$2" "$DB" bench-policy.toml; }
OFF_PORT=6451 ON_PORT=6452
write_config $OFF_PORT false >"$OUT/sqlgate-off.toml"
write_config $ON_PORT true >"$OUT/sqlgate-on.toml"
RUST_LOG=warn "$HERE/target/release/sqlgate" serve --config "$OUT/sqlgate-off.toml" 2>"$OUT/sqlgate-off.log" &
OFF_PID=$!
RUST_LOG=warn,sqlgate::store=info "$HERE/target/release/sqlgate" serve --config "$OUT/sqlgate-on.toml" 2>"$OUT/sqlgate-on.log" &
ON_PID=$!
trap 'kill $OFF_PID $ON_PID 2>/dev/null || true' EXIT
for p in $OFF_PORT $ON_PORT; do
  for _ in $(seq 100); do pg_isready -q -h 127.0.0.1 -p $p && break; sleep 0.1; done
done
for pid in $OFF_PID $ON_PID; do
  kill -0 "$pid" 2>/dev/null || { echo "a sqlgate instance did not start: see $OUT/*.log" >&2; exit 1; }
done

run() { bash "$BENCH/pg_bench.sh" -h 127.0.0.1 -U "$PGUSER" -d "$DB" -T "$T" -r 1 -m "$MODES" -o "$OUT" "$@"; }
for _ in $(seq "$R"); do
  run -p "$PGPORT" -l direct
  run -p "$OFF_PORT" -l recording-off -P "$OFF_PID"
  run -p "$ON_PORT" -l recording-on -P "$ON_PID"
done
kill -INT $ON_PID; wait $ON_PID 2>/dev/null || true
python3 "$BENCH/summarize.py" --base direct "$OUT"/direct.csv "$OUT"/recording-off.csv "$OUT"/recording-on.csv | tee "$OUT/summary.md"
grep -h "writer stops" "$OUT/sqlgate-on.log" | tee -a "$OUT/summary.md" || true
echo "results: $OUT"
