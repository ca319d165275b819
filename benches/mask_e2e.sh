#!/usr/bin/env bash
# End-to-end masking benchmark: the large-result case (pgbench's
# `select * from pgbench_accounts limit 10000`, 10,000 rows) direct, through
# sqlgate with a policy and no mask, and through sqlgate with the same
# policy and one masked text column (pgbench_accounts.filler, masked by
# FUNCTION, default `{ keep_last = 4 }`: masked where the row lies, as the
# value keeps its length; `"redact"` shows the path that rewrites rows),
# in one run, on one server.
#
#   bash benches/mask_e2e.sh [-T SECS] [-r REPEATS] [-f FUNCTION]
#
# Uses the PostgreSQL server at $PGHOST:$PGPORT (default 127.0.0.1:5432) as
# $PGUSER (default postgres, password $PGPASSWORD), creates the database
# sqlgate_bench (pgbench scale 10), builds sqlgate in release mode, and
# prints the summary table that BENCHMARKS.md quotes (proxy CPU per
# transaction = per 10,000 rows). Raw results go to bench-results/.
set -euo pipefail
T=15 R=3 FUNCTION='{ keep_last = 4 }'
while [ $# -gt 0 ]; do
  case "$1" in
    -T) T=$2; shift 2;; -r) R=$2; shift 2;; -f) FUNCTION=$2; shift 2;;
    *) echo "unknown arg $1" >&2; exit 2;;
  esac
done
HERE="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="$(cd "$HERE/../shared/bench" 2>/dev/null && pwd)" || { echo "needs ../shared/bench beside the project" >&2; exit 1; }
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres} PGPASSWORD=${PGPASSWORD:-postgres}
OUT="$HERE/bench-results/mask-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
DB=sqlgate_bench

cd "$HERE"
cargo build --release --quiet
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
bash "$BENCH/pg_bench.sh" -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d "$DB" --init -r 0 -o "$OUT" >/dev/null

write_config() {  # PORT POLICY_FILE
cat <<TOML
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

[policy]
files = ["$2"]
TOML
}
cat >"$OUT/rules.toml" <<TOML
[[rule]]
name = "bench"
users = ["$PGUSER"]
targets = ["*"]
allow = ["read", "write", "tx", "session"]
TOML
cp "$OUT/rules.toml" "$OUT/rules-masked.toml"
cat >>"$OUT/rules-masked.toml" <<TOML

[[mask]]
name = "filler"
columns = ["public.pgbench_accounts.filler"]
function = $FUNCTION
TOML
PLAIN_PORT=6442 MASKED_PORT=6443
write_config $PLAIN_PORT rules.toml >"$OUT/sqlgate-unmasked.toml"
write_config $MASKED_PORT rules-masked.toml >"$OUT/sqlgate-masked.toml"
RUST_LOG=warn "$HERE/target/release/sqlgate" serve --config "$OUT/sqlgate-unmasked.toml" 2>"$OUT/unmasked.log" &
PLAIN_PID=$!
RUST_LOG=warn "$HERE/target/release/sqlgate" serve --config "$OUT/sqlgate-masked.toml" 2>"$OUT/masked.log" &
MASKED_PID=$!
trap 'kill $PLAIN_PID $MASKED_PID 2>/dev/null' EXIT
for p in $PLAIN_PORT $MASKED_PORT; do
  for _ in $(seq 100); do pg_isready -q -h 127.0.0.1 -p $p && break; sleep 0.1; done
done
# A port taken by another process would be measured instead.
for pid in $PLAIN_PID $MASKED_PID; do
  kill -0 "$pid" 2>/dev/null || { echo "a sqlgate instance did not start: see $OUT/*.log" >&2; exit 1; }
done
# The masked instance must really mask (and have read its catalog): filler
# is all blanks, which keep_last keeps, so ask for a value computed from
# it (redacted to ***).
for _ in $(seq 100); do
  v=$(psql -X -At -h 127.0.0.1 -p $MASKED_PORT -d $DB -c "select filler || 'x' from pgbench_accounts limit 1" 2>/dev/null || true)
  case "$v" in *'*'*) break;; esac; sleep 0.1
done
case "$v" in *'*'*) ;; *) echo "the masked instance does not mask: '$v'" >&2; exit 1;; esac

run() { bash "$BENCH/pg_bench.sh" -h 127.0.0.1 -U "$PGUSER" -d "$DB" -T "$T" -r 1 -m large10k_c4 -o "$OUT" "$@"; }
for _ in $(seq "$R"); do  # interleaved, so that drift hits all alike
  run -p "$PGPORT" -l direct
  run -p $PLAIN_PORT -l sqlgate-unmasked -P "$PLAIN_PID"
  run -p $MASKED_PORT -l sqlgate-masked -P "$MASKED_PID"
done
python3 "$BENCH/summarize.py" --base direct "$OUT"/direct.csv "$OUT"/sqlgate-unmasked.csv "$OUT"/sqlgate-masked.csv | tee "$OUT/summary.md"
echo "results: $OUT"
