#!/usr/bin/env bash
# What recording costs, measured so that this machine's noise cancels:
# two sqlgate instances (recording off, recording on; the same policy
# judging every statement) driven at the same time by two pgbench runs of
# the same kind, so that both see the same steal time and neighbours, and
# each one's CPU per transaction (user + system, from /proc) is taken over
# the same window, and the recorder thread's share of the "on" one's. Alternating runs (`recording_e2e.sh`) move by more than
# 10 % from one 8 s run to the next here; these pairs by a few percent.
#
#   bash benches/recording_together.sh [-T SECS] [-r ROUNDS] [-c CLIENTS] [-m "prepared simple tpcb"] [-R TPS] [-A BIN -B BIN [-w off]]
#
# -R: each pgbench holds this rate (pgbench -R), so that both instances
# run at the same throughput: unthrottled pairs on a busy machine can
# differ by 4x in TPS, and CPU per transaction falls as batching grows.
#
# -A BIN -B BIN: two builds compared instead, both recording, each with a
# store of its own ("off" is build A, "on" build B in the output): what
# a change to the recorder costs, measured side by side (copy the
# release binary aside before and after the change). With `-w off` both
# builds run without recording: what a change to the relay costs.
#
# Needs the database recording_e2e.sh makes (sqlgate_bench, pgbench scale
# 10) on $PGHOST:$PGPORT and a release build (cargo build --release).
# Prints one line per run and instance, then per mode the median of the
# pairs' on/off ratios. Raw output: bench-results/.
set -euo pipefail
T=8 R=6 C=16 MODES="prepared simple" RATE="" BIN_A="" BIN_B="" BOTH_RECORD=true
while [ $# -gt 0 ]; do
  case "$1" in
    -T) T=$2; shift 2;; -R) RATE=$2; shift 2;; -A) BIN_A=$2; shift 2;; -B) BIN_B=$2; shift 2;; -w) [ "$2" = off ] && BOTH_RECORD=false; shift 2;; -r) R=$2; shift 2;; -c) C=$2; shift 2;; -m) MODES=$2; shift 2;;
    *) echo "unknown arg $1" >&2; exit 2;;
  esac
done
HERE="$(cd "$(dirname "$0")/.." && pwd)"
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres} PGPASSWORD=${PGPASSWORD:-postgres}
OUT="$HERE/bench-results/together-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
. "$HERE/benches/lib/pg_gateway.sh"
bench_policy "$PGUSER" >"$OUT/bench-policy.toml"
write_config() { gateway_config "$1" "$2" sqlgate_bench bench-policy.toml; }
OFF_PORT=6481 ON_PORT=6482
if [ -n "$BIN_A$BIN_B" ]; then
  [ -x "$BIN_A" ] && [ -x "$BIN_B" ] || { echo "-A and -B name two executables" >&2; exit 2; }
  { write_config $OFF_PORT $BOTH_RECORD; printf '\n[store]\npath = "a.db"\n'; } >"$OUT/sqlgate-off.toml"
  { write_config $ON_PORT $BOTH_RECORD; printf '\n[store]\npath = "b.db"\n'; } >"$OUT/sqlgate-on.toml"
else
  BIN_A="$HERE/target/release/sqlgate" BIN_B="$HERE/target/release/sqlgate"
  write_config $OFF_PORT false >"$OUT/sqlgate-off.toml"
  write_config $ON_PORT true >"$OUT/sqlgate-on.toml"
fi
RUST_LOG=warn "$BIN_A" serve --config "$OUT/sqlgate-off.toml" 2>"$OUT/sqlgate-off.log" &
OFF_PID=$!
RUST_LOG=warn "$BIN_B" serve --config "$OUT/sqlgate-on.toml" 2>"$OUT/sqlgate-on.log" &
ON_PID=$!
trap 'kill $OFF_PID $ON_PID 2>/dev/null || true' EXIT
for p in $OFF_PORT $ON_PORT; do
  for _ in $(seq 100); do pg_isready -q -h 127.0.0.1 -p $p && break; sleep 0.1; done
done
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# The recorder's thread alone (its share of the "on" instance's CPU).
writer_cpu() {
  local t
  for t in /proc/$1/task/*; do
    [ "$(cat "$t/comm")" = sqlgate-recorde ] && awk '{print $14 + $15}' "$t/stat" && return
  done
  echo 0
}
# Context switches of all of an instance's threads (each a sleep or a
# preemption: what costs beyond instructions on two shared cores).
switches() { cat /proc/$1/task/*/status | awk '/ctxt_switches/ {n += $2} END {print n}'; }
txns() { awk '/actually processed/ {split($NF, a, "/"); print a[1]}' "$1"; }
per_txn() { python3 -c "print(round(($2 - $1) * 1e6 / $(getconf CLK_TCK) / $3, 2))"; }
# Modes: prepared, simple (select-only), tpcb (TPC-B through the simple
# protocol: each write waits for its record's durable commit).
bench() {
  local how=(-S -M "$1")
  [ "$1" = tpcb ] && how=(-M simple)
  pgbench -n "${how[@]}" -c "$C" -j 2 -T "$T" ${RATE:+-R "$RATE"} -h 127.0.0.1 -p "$2" -U "$PGUSER" sqlgate_bench
}
for r in $(seq "$R"); do
  for m in $MODES; do
    a0=$(cpu $OFF_PID) b0=$(cpu $ON_PID) w0=$(writer_cpu $ON_PID) v0=$(writer_cpu $OFF_PID)
    s0=$(switches $OFF_PID) t0=$(switches $ON_PID)
    bench "$m" $OFF_PORT >"$OUT/off.log" 2>&1 &
    BG=$!
    bench "$m" $ON_PORT >"$OUT/on.log" 2>&1
    wait $BG
    a1=$(cpu $OFF_PID) b1=$(cpu $ON_PID) w1=$(writer_cpu $ON_PID) v1=$(writer_cpu $OFF_PID)
    s1=$(switches $OFF_PID) t1=$(switches $ON_PID)
    n_off=$(txns "$OUT/off.log") n_on=$(txns "$OUT/on.log")
    sw_off=$(python3 -c "print(round(($s1 - $s0) / $n_off, 2))")
    sw_on=$(python3 -c "print(round(($t1 - $t0) / $n_on, 2))")
    echo "$m $r off $n_off $(per_txn "$a0" "$a1" "$n_off") switches $sw_off writer $(per_txn "$v0" "$v1" "$n_off")"
    echo "$m $r on $n_on $(per_txn "$b0" "$b1" "$n_on") switches $sw_on writer $(per_txn "$w0" "$w1" "$n_on")"
  done
done | tee "$OUT/runs.txt"
python3 - "$OUT/runs.txt" <<'PY' | tee "$OUT/summary.txt"
import collections, statistics, sys
runs = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    mode, r, which, _, us = line.split()[:5]
    runs[(mode, r)][which] = float(us)
for mode in sorted({m for m, _ in runs}):
    pairs = [v for (m, _), v in runs.items() if m == mode]
    ratios = [p["on"] / p["off"] for p in pairs]
    print(f"{mode}: {len(pairs)} pairs, CPU µs/txn off {statistics.median(p['off'] for p in pairs):.2f}, "
          f"on {statistics.median(p['on'] for p in pairs):.2f}; on/off per pair "
          f"{', '.join(f'{x:.3f}' for x in ratios)}; median {statistics.median(ratios):.3f}")
PY
echo "results: $OUT"
