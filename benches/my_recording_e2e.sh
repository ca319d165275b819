#!/usr/bin/env bash
# What recording costs on MySQL, end to end: sysbench oltp_read_write and
# oltp_read_only (16 threads) direct, through sqlgate with a policy
# judging every statement and recording off, and the same with recording
# on (the SQLite store, group commit, writes durable before they run), in
# one run, on one server.
#
#   bash benches/my_recording_e2e.sh [-T SECS] [-r REPEATS]
#
# Uses the MariaDB/MySQL server at $MYHOST:$MYPORT (default 127.0.0.1:3306)
# as root over its socket to create the database sqlgate_bench and the user
# sqlgate_bench (password $MYPW), builds sqlgate in release mode, and
# prints a table: transactions per second and the gateway's CPU time (user
# + system, from /proc) per transaction, and the recording instance's
# commits per second. Raw output: bench-results/.
set -euo pipefail
T=15 R=2
while [ $# -gt 0 ]; do
  case "$1" in
    -T) T=$2; shift 2;; -r) R=$2; shift 2;;
    *) echo "unknown arg $1" >&2; exit 2;;
  esac
done
HERE="$(cd "$(dirname "$0")/.." && pwd)"
MYHOST=${MYHOST:-127.0.0.1} MYPORT=${MYPORT:-3306} MYPW=${MYPW:-bench-pw}
OUT="$HERE/bench-results/myrec-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
DB=sqlgate_bench
command -v sysbench >/dev/null || { echo "needs sysbench (apt-get install sysbench)" >&2; exit 1; }

cd "$HERE"
cargo build --release --quiet
mariadb -uroot -e "CREATE DATABASE IF NOT EXISTS $DB;
  CREATE USER IF NOT EXISTS sqlgate_bench@'%' IDENTIFIED BY '$MYPW';
  ALTER USER sqlgate_bench@'%' IDENTIFIED BY '$MYPW';
  GRANT ALL ON $DB.* TO sqlgate_bench@'%';"
COMMON=(--db-driver=mysql --mysql-host=127.0.0.1 --mysql-user=sqlgate_bench
  --mysql-password="$MYPW" --mysql-db=$DB --tables=4 --table-size=10000)
sysbench oltp_read_write "${COMMON[@]}" --mysql-port="$MYPORT" cleanup >/dev/null 2>&1 || true
sysbench oltp_read_write "${COMMON[@]}" --mysql-port="$MYPORT" prepare >"$OUT/prepare.log" 2>&1

export SQLGATE_BENCH_PW="$MYPW"
. "$HERE/benches/lib/my_gateway.sh"
my_bench_policy >"$OUT/bench-policy.toml"
OFF_PORT=6046 ON_PORT=6047
my_gateway_config $OFF_PORT false >"$OUT/sqlgate-off.toml"
my_gateway_config $ON_PORT true >"$OUT/sqlgate-on.toml"
RUST_LOG=warn "$HERE/target/release/sqlgate" serve --config "$OUT/sqlgate-off.toml" 2>"$OUT/sqlgate-off.log" &
OFF_PID=$!
RUST_LOG=warn,sqlgate::store=info "$HERE/target/release/sqlgate" serve --config "$OUT/sqlgate-on.toml" 2>"$OUT/sqlgate-on.log" &
ON_PID=$!
trap 'kill $OFF_PID $ON_PID 2>/dev/null || true' EXIT
for p in $OFF_PORT $ON_PORT; do
  for _ in $(seq 100); do mariadb-admin --no-defaults -h127.0.0.1 -P$p -usqlgate_bench -p"$MYPW" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
for pid in $OFF_PID $ON_PID; do
  kill -0 "$pid" 2>/dev/null || { echo "a sqlgate instance did not start: see $OUT/*.log" >&2; exit 1; }
done

cpu_ticks() { [ -n "$1" ] && awk '{print $14+$15}' "/proc/$1/stat" || echo 0; }
# run LABEL PORT PID TEST [EXTRA...]: one line "label test tps cpu_us_per_txn"
run() {
  local label=$1 port=$2 pid=$3 test=$4; shift 4
  local t0 t1 out tps txns
  t0=$(cpu_ticks "$pid")
  out=$(sysbench "$test" "${COMMON[@]}" --mysql-port="$port" --threads=16 --time="$T" "$@" run 2>&1)
  t1=$(cpu_ticks "$pid")
  echo "$out" >>"$OUT/$label.log"
  txns=$(echo "$out" | awk '/transactions:/ {print $2}')
  tps=$(echo "$out" | awk -F'[()]' '/transactions:/ {print $2}' | awk '{print $1}')
  local hz; hz=$(getconf CLK_TCK)
  if [ -n "$pid" ]; then
    echo "$label $test$* $tps $(python3 -c "print('%.1f' % (($t1-$t0)*1e6/$hz/$txns))")"
  else
    echo "$label $test$* $tps -"
  fi
}
{
  echo "label test tps cpu_us_per_txn"
  for _ in $(seq "$R"); do
    for t in "oltp_read_write" "oltp_read_only --db-ps-mode=disable"; do
      # shellcheck disable=SC2086
      run direct "$MYPORT" "" $t
      # shellcheck disable=SC2086
      run recording-off "$OFF_PORT" "$OFF_PID" $t
      # shellcheck disable=SC2086
      run recording-on "$ON_PORT" "$ON_PID" $t
    done
  done
} | tee "$OUT/summary.txt"
kill -INT $ON_PID; wait $ON_PID 2>/dev/null || true
grep -h "writer stops" "$OUT/sqlgate-on.log" | tee -a "$OUT/summary.txt" || true
echo "results: $OUT"
