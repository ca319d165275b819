#!/usr/bin/env bash
# Instructions per query of the gateway in front of MariaDB, under
# valgrind's callgrind: the MySQL counterpart of callgrind_gateway.sh
# (counts this machine's noise does not move; user space only, every
# thread).
#
#   bash benches/callgrind_mysql.sh [-b BINARY] [-w off|on] [-R TPS]
#
# sysbench oltp_read_only with --db-ps-mode=disable (the text protocol:
# every query judged), 4 threads: 100 transactions to warm up (counters
# then zeroed), then 500, counted. With -R: 16 threads at that rate for
# 10 s instead (a wake-up per query or two, as at the low rates of
# my_pooler_together.sh, where nothing is batched). Needs the database my_pooler_together.sh
# makes (sqlgate_bench, 4 tables of 10,000 rows) on $MYHOST:$MYPORT.
# Prints one line; the callgrind files stay in bench-results/.
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$HERE/target/release/sqlgate" W=off RATE=""
while [ $# -gt 0 ]; do
  case "$1" in
    -b) BIN=$2; shift 2;; -w) W=$2; shift 2;; -R) RATE=$2; shift 2;;
    *) echo "unknown arg $1" >&2; exit 2;;
  esac
done
MYHOST=${MYHOST:-127.0.0.1} MYPORT=${MYPORT:-3306} MYPW=${MYPW:-bench-pw} DB=sqlgate_bench
OUT="$HERE/bench-results/callgrind-mysql-$(date +%Y%m%d-%H%M%S)-$W"
mkdir -p "$OUT"
PORT=6462
export SQLGATE_BENCH_PW="$MYPW"
. "$HERE/benches/lib/my_gateway.sh"
ENABLED=false; [ "$W" = on ] && ENABLED=true
my_gateway_config $PORT $ENABLED >"$OUT/sqlgate.toml"
my_bench_policy >"$OUT/bench-policy.toml"
RUST_LOG=warn valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$OUT/callgrind.out" \
  "$BIN" serve --config "$OUT/sqlgate.toml" 2>"$OUT/valgrind.log" &
PID=$!
trap 'kill -INT $PID 2>/dev/null || true' EXIT
for _ in $(seq 120); do
  mariadb-admin --no-defaults -h127.0.0.1 -P$PORT -usqlgate_bench -p"$MYPW" ping >/dev/null 2>&1 && break; sleep 1
done
bench() {
  local load=(--threads=4 --events="$1" --time=0)
  [ -n "$RATE" ] && [ "$1" != 100 ] && load=(--threads=16 --rate="$RATE" --time=10)
  sysbench oltp_read_only --db-driver=mysql --mysql-user=sqlgate_bench --mysql-password="$MYPW" \
    --mysql-db="$DB" --tables=4 --table-size=10000 --mysql-host=127.0.0.1 --mysql-port=$PORT \
    --db-ps-mode=disable "${load[@]}" --report-interval=0 run
}
bench 100 >/dev/null 2>&1
callgrind_control -z $PID >/dev/null 2>&1
bench 500 >"$OUT/sysbench.log" 2>&1
callgrind_control -d $PID >/dev/null 2>&1
QUERIES=$(sed -nE 's/^ +queries: +([0-9]+) .*/\1/p' "$OUT/sysbench.log")
[ -n "$QUERIES" ] || { cat "$OUT/sysbench.log" >&2; exit 1; }
python3 - "$OUT" "$QUERIES" <<'PY'
import glob, re, sys
out, queries = sys.argv[1], int(sys.argv[2])
total = sum(int(re.search(r"^(?:summary|totals): (\d+)", open(f, errors="replace").read(), re.M).group(1))
            for f in glob.glob(f"{out}/callgrind.out.1-*"))
print(f"mysql text protocol: {total / queries / 1000:.1f}k instructions per query, {queries} queries ({out})")
PY
