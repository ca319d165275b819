#!/usr/bin/env bash
# End-to-end MySQL benchmark: sysbench oltp_point_select and oltp_read_only
# at 1 and 16 threads, direct, through HAProxy in TCP mode (the reference:
# a byte-forwarding proxy that reads nothing), and through sqlgate (default
# runtime, one worker, and with a policy judging every statement), in one
# run, on one server.
#
#   bash benches/my_e2e.sh [-T SECS] [-r REPEATS] [-m MODES] [--text]
#
# --text: instead of the modes, oltp_read_only with --db-ps-mode=disable
# (the text protocol: every query a COM_QUERY the policy judges) at 16
# threads, direct, through HAProxy and through sqlgate with a policy,
# reporting each proxy's CPU per query.
#
# Uses the MariaDB/MySQL server at $MYHOST:$MYPORT (default 127.0.0.1:3306)
# as root over its socket to create the database sqlgate_bench and the user
# sqlgate_bench (password $MYPW), builds sqlgate in release mode, and prints
# the summary tables BENCHMARKS.md quotes. Raw results: bench-results/.
# Installs sysbench and HAProxy from the distribution's packages when missing.
set -euo pipefail
T=15 R=2 MODES="point_t1,point_t16,ro_t1,ro_t16" TEXT=0
while [ $# -gt 0 ]; do
  case "$1" in
    -T) T=$2; shift 2;; -r) R=$2; shift 2;; -m) MODES=$2; shift 2;; --text) TEXT=1; shift;;
    *) echo "unknown arg $1" >&2; exit 2;;
  esac
done
HERE="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="$(cd "$HERE/../shared/bench" 2>/dev/null && pwd)" || { echo "needs ../shared/bench beside the project" >&2; exit 1; }
MYHOST=${MYHOST:-127.0.0.1} MYPORT=${MYPORT:-3306} MYPW=${MYPW:-bench-pw}
OUT="$HERE/bench-results/my-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
DB=sqlgate_bench

SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
missing=()
command -v sysbench >/dev/null || missing+=(sysbench)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)

cd "$HERE"
cargo build --release --quiet
mariadb -uroot -e "CREATE DATABASE IF NOT EXISTS $DB;
  CREATE USER IF NOT EXISTS sqlgate_bench@'%' IDENTIFIED BY '$MYPW';
  ALTER USER sqlgate_bench@'%' IDENTIFIED BY '$MYPW';
  GRANT ALL ON $DB.* TO sqlgate_bench@'%';"
bash "$BENCH/my_bench.sh" -h "$MYHOST" -p "$MYPORT" -U sqlgate_bench -W "$MYPW" -d "$DB" --prepare -r 0 -o "$OUT" >/dev/null \
  || { echo "sysbench prepare failed: see $OUT/my_${MYHOST}_${MYPORT}.log" >&2; exit 1; }

SG_PORT=6036 SG1_PORT=6037
export SQLGATE_BENCH_PW="$MYPW"
write_config() {  # PORT EXTRA
cat <<TOML
[gateway]
$2

[mysql]
listen = "127.0.0.1:$1"

[[target]]
name = "$DB"
kind = "mysql"
host = "$MYHOST"
port = $MYPORT
database = "$DB"
user = "sqlgate_bench"
password_env = "SQLGATE_BENCH_PW"
pool_size = 20

[[user]]
name = "sqlgate_bench"
password_env = "SQLGATE_BENCH_PW"
targets = ["$DB"]

# Recording is measured on its own (benches/recording_e2e.sh).
[recording]
enabled = false
TOML
}
# Two instances: the default runtime (a worker per CPU) and one worker.
write_config $SG_PORT "worker_threads = $(nproc)" >"$OUT/sqlgate.toml"
write_config $SG1_PORT "worker_threads = 1" >"$OUT/sqlgate-1w.toml"
# A third instance judges every statement (reads, writes, transactions
# allowed for the bench user).
SGP_PORT=6038
write_config $SGP_PORT "" >"$OUT/sqlgate-policy.toml"
printf '\n[policy]\nfiles = ["bench-policy.toml"]\n' >>"$OUT/sqlgate-policy.toml"
cat >"$OUT/bench-policy.toml" <<TOML
[[rule]]
name = "bench"
users = ["sqlgate_bench"]
targets = ["*"]
allow = ["read", "write", "tx", "session"]
TOML
RUST_LOG=warn "$HERE/target/release/sqlgate" serve --config "$OUT/sqlgate.toml" 2>"$OUT/sqlgate.log" &
SG_PID=$!
RUST_LOG=warn "$HERE/target/release/sqlgate" serve --config "$OUT/sqlgate-1w.toml" 2>"$OUT/sqlgate-1w.log" &
SG1_PID=$!
RUST_LOG=warn "$HERE/target/release/sqlgate" serve --config "$OUT/sqlgate-policy.toml" 2>"$OUT/sqlgate-policy.log" &
SGP_PID=$!
# HAProxy, one thread (as sqlgate's one-worker instance), plain TCP
# forwarding: what any proxy in the path costs on this machine.
HA_PORT=6039
cat >"$OUT/haproxy.cfg" <<CFG
global
    nbthread 1
    maxconn 1000
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
listen mysql
    bind 127.0.0.1:$HA_PORT
    server db $MYHOST:$MYPORT
CFG
"$HAPROXY" -f "$OUT/haproxy.cfg" -db >"$OUT/haproxy.log" 2>&1 &
HA_PID=$!
trap 'kill $SG_PID $SG1_PID $SGP_PID $HA_PID 2>/dev/null' EXIT
for p in $HA_PORT $SG_PORT $SG1_PORT $SGP_PORT; do
  for _ in $(seq 100); do mariadb-admin --no-defaults -h127.0.0.1 -P$p -usqlgate_bench -p"$MYPW" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
# A port taken by another process would be measured instead.
for pid in $HA_PID $SG_PID $SG1_PID $SGP_PID; do
  kill -0 "$pid" 2>/dev/null || { echo "a proxy did not start: see $OUT/*.log" >&2; exit 1; }
done

if [ "$TEXT" = 1 ]; then
  # One sysbench run: LABEL PORT [PID]; prints QPS and the proxy's CPU
  # per query (user+system time from /proc).
  text_run() {
    local label=$1 port=$2 pid=${3:-} c0=0 c1=0 clk out q qps cpu=""
    clk=$(getconf CLK_TCK)
    [ -n "$pid" ] && c0=$(awk '{print $14+$15}' /proc/$pid/stat)
    out=$(sysbench oltp_read_only --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$port" \
      --mysql-user=sqlgate_bench --mysql-password="$MYPW" --mysql-db="$DB" --tables=4 --table-size=10000 \
      --db-ps-mode=disable --threads=16 --time="$T" --report-interval=0 run 2>&1)
    [ -n "$pid" ] && c1=$(awk '{print $14+$15}' /proc/$pid/stat)
    q=$(echo "$out" | sed -nE 's/^ +queries: +([0-9]+) +\(([0-9.]+) per sec.*/\1/p')
    qps=$(echo "$out" | sed -nE 's/^ +queries: +([0-9]+) +\(([0-9.]+) per sec.*/\2/p')
    [ -n "$pid" ] && [ -n "$q" ] && cpu=$(awk -v a="$c0" -v b="$c1" -v n="$q" -v k="$clk" 'BEGIN{printf "%.2f",(b-a)/k*1e6/n}')
    echo "$label qps=${qps:-FAILED} proxy_cpu_us_per_query=${cpu:-}" | tee -a "$OUT/text.txt"
  }
  for _ in $(seq "$R"); do  # interleaved
    text_run direct "$MYPORT"
    text_run haproxy "$HA_PORT" "$HA_PID"
    text_run sqlgate-policy "$SGP_PORT" "$SGP_PID"
  done
  echo "results: $OUT/text.txt"
  exit 0
fi

run() { bash "$BENCH/my_bench.sh" -h 127.0.0.1 -U sqlgate_bench -W "$MYPW" -d "$DB" -T "$T" -r 1 -m "$MODES" -o "$OUT" "$@"; }
for _ in $(seq "$R"); do
  run -p "$MYPORT" -l direct
  run -p "$HA_PORT" -l haproxy -P "$HA_PID"
  run -p "$SG_PORT" -l sqlgate -P "$SG_PID"
  run -p "$SG1_PORT" -l sqlgate-1worker -P "$SG1_PID"
  run -p "$SGP_PORT" -l sqlgate-policy -P "$SGP_PID"
done
python3 "$BENCH/summarize.py" --metric qps --base direct "$OUT"/direct.csv "$OUT"/haproxy.csv "$OUT"/sqlgate.csv "$OUT"/sqlgate-1worker.csv "$OUT"/sqlgate-policy.csv | tee "$OUT/summary.md"
echo "results: $OUT"
