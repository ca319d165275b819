#!/usr/bin/env bash
# End-to-end masking benchmark, MySQL: a 10,000-row result (sysbench's
# sbtest1: id, k, c char(120), pad char(60); `SELECT id, k, c, pad FROM
# sbtest1 LIMIT 10000`, text protocol, 4 threads) direct, through sqlgate
# with a policy and no mask, and through sqlgate with the same policy and
# one masked column (sbtest1.c, masked by FUNCTION, default
# `{ keep_last = 4 }`), in one run, on one server.
#
#   bash benches/my_mask_e2e.sh [-T SECS] [-r REPEATS] [-f FUNCTION]
#
# Uses the MariaDB/MySQL server at $MYHOST:$MYPORT (default 127.0.0.1:3306)
# as root over its socket to create the database sqlgate_bench and the user
# sqlgate_bench (password $MYPW), builds sqlgate in release mode, and
# prints the summary table BENCHMARKS.md quotes (proxy CPU per transaction
# = per 10,000 rows). Installs sysbench when missing. Raw results:
# bench-results/.
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
MYHOST=${MYHOST:-127.0.0.1} MYPORT=${MYPORT:-3306} MYPW=${MYPW:-bench-pw}
OUT="$HERE/bench-results/my-mask-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
DB=sqlgate_bench

if ! command -v sysbench >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq sysbench >/dev/null
fi

cd "$HERE"
cargo build --release --quiet
mariadb -uroot -e "CREATE DATABASE IF NOT EXISTS $DB;
  CREATE USER IF NOT EXISTS sqlgate_bench@'%' IDENTIFIED BY '$MYPW';
  ALTER USER sqlgate_bench@'%' IDENTIFIED BY '$MYPW';
  GRANT ALL ON $DB.* TO sqlgate_bench@'%';"
bash "$BENCH/my_bench.sh" -h "$MYHOST" -p "$MYPORT" -U sqlgate_bench -W "$MYPW" -d "$DB" --prepare -r 0 -o "$OUT" >/dev/null \
  || { echo "sysbench prepare failed: see $OUT/my_${MYHOST}_${MYPORT}.log" >&2; exit 1; }

export SQLGATE_BENCH_PW="$MYPW"
write_config() {  # PORT POLICY_FILE
cat <<TOML
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

[policy]
files = ["$2"]
TOML
}
cat >"$OUT/rules.toml" <<TOML
[[rule]]
name = "bench"
users = ["sqlgate_bench"]
targets = ["*"]
allow = ["read", "write", "tx", "session"]
TOML
cp "$OUT/rules.toml" "$OUT/rules-masked.toml"
cat >>"$OUT/rules-masked.toml" <<TOML

[[mask]]
name = "c"
columns = ["$DB.sbtest1.c"]
function = $FUNCTION
TOML
PLAIN_PORT=6046 MASKED_PORT=6047
write_config $PLAIN_PORT rules.toml >"$OUT/sqlgate-unmasked.toml"
write_config $MASKED_PORT rules-masked.toml >"$OUT/sqlgate-masked.toml"
RUST_LOG=warn "$HERE/target/release/sqlgate" serve --config "$OUT/sqlgate-unmasked.toml" 2>"$OUT/unmasked.log" &
PLAIN_PID=$!
RUST_LOG=warn "$HERE/target/release/sqlgate" serve --config "$OUT/sqlgate-masked.toml" 2>"$OUT/masked.log" &
MASKED_PID=$!
trap 'kill $PLAIN_PID $MASKED_PID 2>/dev/null' EXIT
client() {  # PORT SQL
  mariadb --no-defaults -h127.0.0.1 -P"$1" -usqlgate_bench -p"$MYPW" -N -B "$DB" -e "$2"
}
for p in $PLAIN_PORT $MASKED_PORT; do
  for _ in $(seq 100); do client $p "SELECT 1" >/dev/null 2>&1 && break; sleep 0.1; done
done
# A port taken by another process would be measured instead.
for pid in $PLAIN_PID $MASKED_PID; do
  kill -0 "$pid" 2>/dev/null || { echo "a sqlgate instance did not start: see $OUT/*.log" >&2; exit 1; }
done
# The masked instance must really mask (once it has read its catalog).
for _ in $(seq 100); do
  v=$(client $MASKED_PORT "SELECT c FROM sbtest1 LIMIT 1" 2>/dev/null || true)
  case "$v" in '*'*) break;; esac; sleep 0.1
done
case "$v" in '*'*) ;; *) echo "the masked instance does not mask: '$v'" >&2; exit 1;; esac

cat >"$OUT/large.lua" <<'LUA'
function thread_init()
  drv = sysbench.sql.driver()
  con = drv:connect()
end
function event()
  con:query("SELECT id, k, c, pad FROM sbtest1 LIMIT 10000")
end
function thread_done()
  con:disconnect()
end
LUA

CLK=$(getconf CLK_TCK)
cpu_of() { [ -n "$1" ] && awk '{print $14+$15}' /proc/$1/stat || echo 0; }
run() {  # LABEL PORT PID REP
  local csv="$OUT/$1.csv"
  [ -f "$csv" ] || echo "label,mode,rep,tps,qps,lat_avg_ms,lat_p95_ms,txns,proxy_cpu_us_per_txn,rc" >"$csv"
  local c0 c1 o rc n tps lat p95 cpu=""
  c0=$(cpu_of "$3")
  o=$(sysbench "$OUT/large.lua" --threads=4 --time="$T" --report-interval=0 --db-driver=mysql \
      --mysql-host=127.0.0.1 --mysql-port="$2" --mysql-user=sqlgate_bench --mysql-password="$MYPW" \
      --mysql-db="$DB" run 2>&1); rc=$?
  c1=$(cpu_of "$3"); echo "$o" >>"$OUT/$1.log"
  n=$(echo "$o" | sed -nE 's/^ +transactions: +([0-9]+) +\(([0-9.]+) per sec.*/\1/p')
  tps=$(echo "$o" | sed -nE 's/^ +transactions: +([0-9]+) +\(([0-9.]+) per sec.*/\2/p')
  lat=$(echo "$o" | sed -nE 's/^ +avg: +([0-9.]+).*/\1/p' | head -1)
  p95=$(echo "$o" | sed -nE 's/^ +95th percentile: +([0-9.]+).*/\1/p' | head -1)
  if [ -n "$3" ] && [ -n "$n" ] && [ "$n" -gt 0 ]; then
    cpu=$(awk -v a="$c0" -v b="$c1" -v n="$n" -v k="$CLK" 'BEGIN{printf "%.1f",(b-a)/k*1e6/n}')
  fi
  echo "== $1 rep=$4: tps=${tps:-NA} proxy_cpu_us/txn=${cpu:-NA} rc=$rc"
  echo "$1,large10k_t4,$4,${tps:-},${tps:-},${lat:-},${p95:-},${n:-},$cpu,$rc" >>"$csv"
}
for rep in $(seq "$R"); do  # interleaved, so that drift hits all alike
  run direct "$MYPORT" "" "$rep"
  run sqlgate-unmasked $PLAIN_PORT $PLAIN_PID "$rep"
  run sqlgate-masked $MASKED_PORT $MASKED_PID "$rep"
done
python3 "$BENCH/summarize.py" --base direct "$OUT"/direct.csv "$OUT"/sqlgate-unmasked.csv "$OUT"/sqlgate-masked.csv | tee "$OUT/summary.md"
echo "results: $OUT"
