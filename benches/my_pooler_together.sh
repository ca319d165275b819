#!/usr/bin/env bash
# sqlgate against HAProxy at the same rate, in the same window (the MySQL
# side of pooler_together.sh): HAProxy (TCP forwarding, one thread) and
# sqlgate judging every statement each carry their own sysbench
# `oltp_read_only --db-ps-mode=disable` (every query a COM_QUERY with
# literals) at 16 threads and the same `--rate` (transactions per second,
# 14 queries each), at the same time; each one's CPU per query (user +
# system, from /proc) is taken over the same window. sqlgate runs its
# default runtime.
#
#   bash benches/my_pooler_together.sh [-T SECS] [-r ROUNDS] [-R "100 250"]
#
# Needs a MariaDB/MySQL server on 127.0.0.1:3306 whose root logs in over
# the socket, sysbench, HAProxy and a release build. Makes the database
# sqlgate_bench (4 tables of 10,000 rows) as my_e2e.sh does. Prints one
# line per run, then per rate the median of the pairs' ratios.
set -euo pipefail
T=10 R=3 RATES="100 250"
while [ $# -gt 0 ]; do
  case "$1" in
    -T) T=$2; shift 2;; -r) R=$2; shift 2;; -R) RATES=$2; shift 2;;
    *) echo "unknown arg $1" >&2; exit 2;;
  esac
done
HERE="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="$(cd "$HERE/../shared/bench" 2>/dev/null && pwd)" || { echo "needs ../shared/bench beside the project" >&2; exit 1; }
MYHOST=${MYHOST:-127.0.0.1} MYPORT=${MYPORT:-3306} MYPW=${MYPW:-bench-pw}
OUT="$HERE/bench-results/my-pooler-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
DB=sqlgate_bench
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
mariadb -uroot -e "CREATE DATABASE IF NOT EXISTS $DB;
  CREATE USER IF NOT EXISTS sqlgate_bench@'%' IDENTIFIED BY '$MYPW';
  ALTER USER sqlgate_bench@'%' IDENTIFIED BY '$MYPW';
  GRANT ALL ON $DB.* TO sqlgate_bench@'%';"
COMMON=(--db-driver=mysql --mysql-user=sqlgate_bench --mysql-password="$MYPW" --mysql-db="$DB" --tables=4 --table-size=10000)
if ! mariadb -uroot -e "SELECT 1 FROM $DB.sbtest4 LIMIT 1" >/dev/null 2>&1; then
  sysbench oltp_read_only "${COMMON[@]}" --mysql-host="$MYHOST" --mysql-port="$MYPORT" prepare >"$OUT/prepare.log" 2>&1
fi
SG_PORT=6096 HA_PORT=6097
export SQLGATE_BENCH_PW="$MYPW"
. "$HERE/benches/lib/my_gateway.sh"
my_gateway_config $SG_PORT false >"$OUT/sqlgate.toml"
my_bench_policy >"$OUT/bench-policy.toml"
haproxy_config $HA_PORT >"$OUT/haproxy.cfg"
RUST_LOG=warn "$HERE/target/release/sqlgate" serve --config "$OUT/sqlgate.toml" 2>"$OUT/sqlgate.log" &
SG_PID=$!
"$HAPROXY" -f "$OUT/haproxy.cfg" -db >"$OUT/haproxy.log" 2>&1 &
HA_PID=$!
trap 'kill $SG_PID $HA_PID 2>/dev/null || true' EXIT
for p in $SG_PORT $HA_PORT; do
  for _ in $(seq 100); do mariadb-admin --no-defaults -h127.0.0.1 -P$p -usqlgate_bench -p"$MYPW" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
for pid in $SG_PID $HA_PID; do
  kill -0 "$pid" 2>/dev/null || { echo "a proxy did not start: see $OUT/*.log" >&2; exit 1; }
done
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
user() { awk '{print $14}' "/proc/$1/stat"; }
# Context switches of all a process's threads (each sleep in epoll_wait
# and wake-up is one): how many events each wake-up serves.
switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {n += $2} END {print n}'; }
bench() {  # PORT RATE
  sysbench oltp_read_only "${COMMON[@]}" --mysql-host=127.0.0.1 --mysql-port="$1" \
    --db-ps-mode=disable --threads=16 --time="$T" --rate="$2" --report-interval=0 run
}
queries() { sed -nE 's/^ +queries: +([0-9]+) .*/\1/p' "$1"; }
per_query() { python3 -c "print(round(($2 - $1) * 1e6 / $(getconf CLK_TCK) / $3, 2))"; }
bench $SG_PORT 100 >/dev/null 2>&1 &  # warm both
WARM=$!
bench $HA_PORT 100 >/dev/null 2>&1
wait $WARM
for r in $(seq "$R"); do
  for rate in $RATES; do
    a0=$(cpu $SG_PID) b0=$(cpu $HA_PID) w0=$(switches $SG_PID) v0=$(switches $HA_PID) u0=$(user $SG_PID) h0=$(user $HA_PID)
    bench $HA_PORT "$rate" >"$OUT/ha.log" 2>&1 &
    BG=$!
    bench $SG_PORT "$rate" >"$OUT/sg.log" 2>&1
    wait $BG
    a1=$(cpu $SG_PID) b1=$(cpu $HA_PID) w1=$(switches $SG_PID) v1=$(switches $HA_PID) u1=$(user $SG_PID) h1=$(user $HA_PID)
    q_s=$(queries "$OUT/sg.log") q_h=$(queries "$OUT/ha.log")
    echo "$rate $r sqlgate $q_s $(per_query "$a0" "$a1" "$q_s") haproxy $q_h $(per_query "$b0" "$b1" "$q_h")" \
      "switches $(python3 -c "print(round(($w1 - $w0) / $q_s, 2), round(($v1 - $v0) / $q_h, 2))")" \
      "user $(per_query "$u0" "$u1" "$q_s") $(per_query "$h0" "$h1" "$q_h")"
  done
done | tee "$OUT/runs.txt"
python3 - "$OUT/runs.txt" <<'PY' | tee "$OUT/summary.txt"
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    rate, _, _, q, us, _, qh, ush = line.split()[:8]
    runs[int(rate)].append((float(us), float(ush), int(q), int(qh)))
print("| rate (txn/s each) | queries (sqlgate, HAProxy) | sqlgate CPU µs/query | HAProxy CPU µs/query | ratio per pair | median |")
print("|---|---|---|---|---|---|")
for rate, v in sorted(runs.items()):
    ratios = [s / h for s, h, _, _ in v]
    print(f"| {rate} | {statistics.median(q for *_, q, _ in v)}, {statistics.median(q for *_, q in v)} | "
          f"{statistics.median(s for s, *_ in v):.2f} | {statistics.median(h for _, h, *_ in v):.2f} | "
          f"{', '.join(f'{x:.3f}' for x in ratios)} | {statistics.median(ratios):.3f} |")
PY
echo "results: $OUT"
