#!/usr/bin/env bash
# sqlgate against PgBouncer at the same transaction rate, in the same
# window: PgBouncer (session mode) and a sqlgate instance that judges
# every statement are each driven by their own pgbench of the same kind
# and rate (-R) at the same time, and each one's CPU per transaction
# (user + system, from /proc) is taken over the same window. Two sqlgate
# instances take turns beside PgBouncer: the default runtime (with the
# database on this machine, a worker per CPU but one: src/runtime.rs) and
# a worker per CPU (`worker_threads` = nproc).
#
# Why this form beside pg_e2e.sh's unthrottled runs: unthrottled, each
# proxy runs at the rate its own cost leaves it on two cores shared with
# the server and pgbench, and CPU per transaction falls as the rate (and
# so each wake-up's batch) grows, so two proxies are compared at different
# operating points and minutes apart. Here they carry the same load
# through the same noise.
#
#   bash benches/pooler_together.sh [-T SECS] [-r ROUNDS] [-R "2000 5000"] [-m "simple prepared tpcb"] [-P "300 600"]
#
# Modes: select-only through the simple or the extended (prepared)
# protocol, or TPC-B through the simple protocol ("tpcb", at the -P rates:
# a TPC-B transaction is seven statements and a write).
#
# Needs the database recording_e2e.sh or pg_e2e.sh makes (sqlgate_bench,
# pgbench scale 10) on $PGHOST:$PGPORT, PgBouncer, ../shared/bench and a
# release build (cargo build --release). Prints one line per run and
# instance, then per mode and rate the median of the pairs' sqlgate ÷
# PgBouncer ratios. Raw output: bench-results/.
set -euo pipefail
T=10 R=3 RATES="2000 5000" TPCB_RATES="300 600" MODES="simple prepared" C=16
while [ $# -gt 0 ]; do
  case "$1" in
    -T) T=$2; shift 2;; -r) R=$2; shift 2;; -R) RATES=$2; shift 2;; -m) MODES=$2; shift 2;; -P) TPCB_RATES=$2; shift 2;;
    *) echo "unknown arg $1" >&2; exit 2;;
  esac
done
HERE="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="$(cd "$HERE/../shared/bench" 2>/dev/null && pwd)" || { echo "needs ../shared/bench beside the project" >&2; exit 1; }
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres} PGPASSWORD=${PGPASSWORD:-postgres}
OUT="$HERE/bench-results/pooler-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
. "$HERE/benches/lib/pg_gateway.sh"
bench_policy "$PGUSER" >"$OUT/bench-policy.toml"
SG_PORT=6491 SG1_PORT=6492
gateway_config $SG_PORT false sqlgate_bench bench-policy.toml >"$OUT/sqlgate.toml"
{ printf '[gateway]\nworker_threads = %s\n\n' "$(nproc)"; gateway_config $SG1_PORT false sqlgate_bench bench-policy.toml; } >"$OUT/sqlgate-per-cpu.toml"
RUST_LOG=warn "$HERE/target/release/sqlgate" serve --config "$OUT/sqlgate.toml" 2>"$OUT/sqlgate.log" &
SG_PID=$!
RUST_LOG=warn "$HERE/target/release/sqlgate" serve --config "$OUT/sqlgate-per-cpu.toml" 2>"$OUT/sqlgate-per-cpu.log" &
SG1_PID=$!
read -r PGB_PID PGB_PORT < <(bash "$BENCH/pgbouncer.sh" start -m session -d sqlgate_bench -U "$PGUSER" -W "$PGPASSWORD" -H "$PGHOST" -P "$PGPORT")
trap 'kill $SG_PID $SG1_PID 2>/dev/null; bash "$BENCH/pgbouncer.sh" stop >/dev/null 2>&1 || true' EXIT
for p in $SG_PORT $SG1_PORT $PGB_PORT; do
  for _ in $(seq 100); do pg_isready -q -h 127.0.0.1 -p $p && break; sleep 0.1; done
done
for pid in $SG_PID $SG1_PID $PGB_PID; do
  kill -0 "$pid" 2>/dev/null || { echo "a proxy did not start: see $OUT/*.log" >&2; exit 1; }
done
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Context switches of all a process's threads (each sleep in epoll_wait
# and wake-up is one): how many events each wake-up serves.
switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {n += $2} END {print n}'; }
txns() { awk '/actually processed/ {split($NF, a, "/"); print a[1]}' "$1"; }
per_txn() { python3 -c "print(round(($2 - $1) * 1e6 / $(getconf CLK_TCK) / $3, 2))"; }
# The pgbench arguments of a mode.
kind() { if [ "$1" = tpcb ]; then echo "-M simple"; else echo "-S -M $1"; fi; }
# shellcheck disable=SC2046 # kind's words are meant to split
bench() { pgbench -n $(kind "$1") -c "$C" -j 2 -T "$T" -R "$2" -h 127.0.0.1 -p "$3" -U "$PGUSER" sqlgate_bench; }
# One pair: PgBouncer and the sqlgate instance LABEL (PID, PORT) at once.
pair() {
  local m=$1 rate=$2 r=$3 label=$4 pid=$5 port=$6 a0 a1 b0 b1 n_s n_b w0 w1 v0 v1
  a0=$(cpu "$pid") b0=$(cpu "$PGB_PID") w0=$(switches "$pid") v0=$(switches "$PGB_PID")
  bench "$m" "$rate" "$PGB_PORT" >"$OUT/pgb.log" 2>&1 &
  local bg=$!
  bench "$m" "$rate" "$port" >"$OUT/sg.log" 2>&1
  wait $bg
  a1=$(cpu "$pid") b1=$(cpu "$PGB_PID") w1=$(switches "$pid") v1=$(switches "$PGB_PID")
  n_s=$(txns "$OUT/sg.log") n_b=$(txns "$OUT/pgb.log")
  echo "$m $rate $r $label $n_s $(per_txn "$a0" "$a1" "$n_s") pgbouncer $n_b $(per_txn "$b0" "$b1" "$n_b")" \
    "switches $(python3 -c "print(round(($w1 - $w0) / $n_s, 2), round(($v1 - $v0) / $n_b, 2))")"
}
for m in $MODES; do  # warm both paths
  # shellcheck disable=SC2046
  pgbench -n $(kind "$m") -c "$C" -j 2 -T 2 -h 127.0.0.1 -p $SG_PORT -U "$PGUSER" sqlgate_bench >/dev/null 2>&1
  # shellcheck disable=SC2046
  pgbench -n $(kind "$m") -c "$C" -j 2 -T 2 -h 127.0.0.1 -p $SG1_PORT -U "$PGUSER" sqlgate_bench >/dev/null 2>&1
done
for r in $(seq "$R"); do
  for m in $MODES; do
    rates=$RATES
    [ "$m" = tpcb ] && rates=$TPCB_RATES
    for rate in $rates; do
      pair "$m" "$rate" "$r" sqlgate "$SG_PID" "$SG_PORT"
      pair "$m" "$rate" "$r" sqlgate-per-cpu "$SG1_PID" "$SG1_PORT"
    done
  done
done | tee "$OUT/runs.txt"
python3 - "$OUT/runs.txt" <<'PY' | tee "$OUT/summary.txt"
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    m, rate, _, label, n, us, _, nb, usb = line.split()[:9]
    runs[(m, int(rate), label)].append((float(us), float(usb), int(n), int(nb)))
print("| mode | rate (TPS each) | sqlgate instance | CPU µs/txn | PgBouncer CPU µs/txn | sqlgate ÷ PgBouncer per pair | median |")
print("|---|---|---|---|---|---|---|")
for (m, rate, label), v in sorted(runs.items()):
    ratios = [s / b for s, b, _, _ in v]
    print(f"| {m} | {rate} | {label} | {statistics.median(s for s, *_ in v):.2f} | "
          f"{statistics.median(b for _, b, *_ in v):.2f} | {', '.join(f'{x:.3f}' for x in ratios)} | "
          f"{statistics.median(ratios):.3f} |")
PY
echo "results: $OUT"
