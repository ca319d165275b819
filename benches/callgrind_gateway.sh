#!/usr/bin/env bash
# Instructions per transaction of the gateway, recording off or on, under
# valgrind's callgrind: counts that this machine's steal time and noisy
# neighbours do not move (user space only, every thread; SHA-256 runs in
# valgrind's software path, which hides the CPU's SHA extensions).
#
#   bash benches/callgrind_gateway.sh [-b BINARY] [-w off|on] [-m simple|prepared]
#
# Needs valgrind and the database recording_e2e.sh makes (sqlgate_bench,
# pgbench scale 10) on $PGHOST:$PGPORT. pgbench runs 4 clients: 300
# transactions each to warm up (counters then zeroed), then 1,000 each,
# counted. Prints one line (all threads, and the recorder's apart); the
# callgrind files (one per thread) stay in bench-results/.
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$HERE/target/release/sqlgate" W=on MODE=simple
while [ $# -gt 0 ]; do
  case "$1" in
    -b) BIN=$2; shift 2;; -w) W=$2; shift 2;; -m) MODE=$2; shift 2;;
    *) echo "unknown arg $1" >&2; exit 2;;
  esac
done
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres} PGPASSWORD=${PGPASSWORD:-postgres}
OUT="$HERE/bench-results/callgrind-$(date +%Y%m%d-%H%M%S)-$W-$MODE"
mkdir -p "$OUT"
PORT=6461
. "$HERE/benches/lib/pg_gateway.sh"
bench_policy "$PGUSER" >"$OUT/policy.toml"
ENABLED=false; [ "$W" = on ] && ENABLED=true
gateway_config "$PORT" "$ENABLED" sqlgate_bench policy.toml >"$OUT/sqlgate.toml"
RUST_LOG=warn valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$OUT/callgrind.out" \
  "$BIN" serve --config "$OUT/sqlgate.toml" 2>"$OUT/valgrind.log" &
PID=$!
trap 'kill -INT $PID 2>/dev/null || true' EXIT
for _ in $(seq 120); do pg_isready -q -h 127.0.0.1 -p $PORT && break; sleep 1; done
bench() { pgbench -n -S -M "$MODE" -c 4 -j 1 -t "$1" -h 127.0.0.1 -p $PORT -U "$PGUSER" sqlgate_bench; }
bench 300 >/dev/null 2>&1
callgrind_control -z $PID >/dev/null 2>&1
bench 1000 >"$OUT/pgbench.log" 2>&1
callgrind_control -d $PID >/dev/null 2>&1
grep -q 'actually processed: 4000/4000' "$OUT/pgbench.log" || { cat "$OUT/pgbench.log" >&2; exit 1; }
# One file per thread: the recorder's thread is the one that runs the
# writer's loop.
python3 - "$OUT" "$W" "$MODE" <<'PY'
import glob, re, sys
out, w, mode = sys.argv[1:]
total = writer = 0
for f in glob.glob(f"{out}/callgrind.out.1-*"):
    text = open(f, errors="replace").read()
    ir = int(re.search(r"^(?:summary|totals): (\d+)", text, re.M).group(1))
    total += ir
    if "sqlgate::store::writer::Writer::run" in text:
        writer += ir
k = lambda n: f"{n / 4000 / 1000:.1f}k"
print(f"recording {w}, {mode}: {k(total)} instructions per transaction "
      f"(workers {k(total - writer)}, recorder {k(writer)}) ({out})")
PY
