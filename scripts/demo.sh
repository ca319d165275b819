#!/usr/bin/env bash
# The demo: installs what is missing (PostgreSQL and MariaDB from the
# distribution's packages), starts a throwaway PostgreSQL and MariaDB in
# ./demo, each with a small shop database, makes a self-signed certificate,
# and runs sqlgate in front of both with a demo configuration. Prints how
# to connect with psql and with the mariadb client.
# Ctrl-C stops sqlgate and the demo servers. Nothing outside ./demo changes
# (besides installed packages).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEMO="$ROOT/demo"
PG_PORT=${DEMO_PG_PORT:-54329}
GW_PORT=${DEMO_GW_PORT:-6432}
MY_PORT=${DEMO_MY_PORT:-33069}
GW_MY_PORT=${DEMO_GW_MY_PORT:-6033}

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v psql >/dev/null; then
  echo "== installing PostgreSQL"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql postgresql-contrib >/dev/null
fi
if ! command -v mariadb-install-db >/dev/null || ! command -v mariadbd >/dev/null || ! command -v mariadb >/dev/null; then
  echo "== installing MariaDB"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mariadb-server mariadb-client >/dev/null
fi
if ! command -v cargo >/dev/null; then
  echo "sqlgate is built with cargo: install Rust from https://rustup.rs first" >&2
  exit 1
fi
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
SQLGATE="${CARGO_TARGET_DIR:-$ROOT/target}/release/sqlgate"

echo "== building sqlgate (release)"
cargo build --release --quiet

# PostgreSQL refuses to run as root: run it as the postgres user then.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

mkdir -p "$DEMO"
export APP_DB_PASSWORD=${APP_DB_PASSWORD:-shop-owner-demo-pw}
export SQLGATE_AGENT_PASSWORD=${SQLGATE_AGENT_PASSWORD:-agent-demo-pw}
export SQLGATE_CI_PASSWORD=${SQLGATE_CI_PASSWORD:-ci-demo-pw}
# The demo's DBA, who approves held statements through the admin API.
export SQLGATE_DBA_TOKEN=${SQLGATE_DBA_TOKEN:-dba-demo-token-change-me}
ADMIN_PORT=${DEMO_ADMIN_PORT:-9187}
if [ ! -d "$DEMO/pgdata" ]; then
  echo "== creating the demo PostgreSQL cluster in demo/pgdata"
  PWFILE=$(mktemp); echo "postgres-demo-pw" >"$PWFILE"
  [ "$(id -u)" = 0 ] && chown postgres "$PWFILE" "$DEMO"
  as_pg "$BIN/initdb" -D "$DEMO/pgdata" -U postgres --auth=scram-sha-256 --pwfile="$PWFILE" -E UTF8 --locale=C >/dev/null
  rm -f "$PWFILE"
  cat >>"$DEMO/pgdata/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$DEMO'
CONF
  FRESH=1
fi
[ "$(id -u)" = 0 ] && chown -R postgres "$DEMO/pgdata"
as_pg "$BIN/pg_ctl" -D "$DEMO/pgdata" -l "$DEMO/postgres.log" -w start >/dev/null
trap 'as_pg "$BIN/pg_ctl" -D "$DEMO/pgdata" -m fast stop >/dev/null 2>&1 || true' EXIT
export PGPASSWORD=postgres-demo-pw
if [ "${FRESH:-0}" = 1 ]; then
  echo "== loading the sample shop database"
  psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
    -c "CREATE ROLE shop_owner LOGIN PASSWORD '$APP_DB_PASSWORD'" \
    -c "CREATE DATABASE shop OWNER shop_owner"
  PGPASSWORD=$APP_DB_PASSWORD psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U shop_owner -d shop -f "$ROOT/fixtures/demo/shop.sql"
fi
unset PGPASSWORD

# MariaDB, as the mysql user when we are root.
MY_USER_ARG=(); [ "$(id -u)" = 0 ] && MY_USER_ARG=(--user=mysql)
if [ ! -d "$DEMO/mariadb" ]; then
  echo "== creating the demo MariaDB in demo/mariadb"
  mkdir -p "$DEMO/mariadb"
  [ "$(id -u)" = 0 ] && chown -R mysql:mysql "$DEMO/mariadb"
  mariadb-install-db --no-defaults --datadir="$DEMO/mariadb/data" --auth-root-authentication-method=normal --skip-test-db "${MY_USER_ARG[@]}" >/dev/null
  MY_FRESH=1
fi
mariadbd --no-defaults --datadir="$DEMO/mariadb/data" --socket="$DEMO/mariadb/sock" --port="$MY_PORT" \
  --bind-address=127.0.0.1 --pid-file="$DEMO/mariadb/pid" --log-error="$DEMO/mariadb/err.log" "${MY_USER_ARG[@]}" &
MY_PID=$!
trap 'kill $MY_PID 2>/dev/null; as_pg "$BIN/pg_ctl" -D "$DEMO/pgdata" -m fast stop >/dev/null 2>&1 || true' EXIT
mariadb-admin --no-defaults --socket="$DEMO/mariadb/sock" --user=root --wait=30 ping >/dev/null
if [ "${MY_FRESH:-0}" = 1 ]; then
  echo "== loading the sample shop database into MariaDB"
  mariadb --no-defaults --socket="$DEMO/mariadb/sock" --user=root -e "CREATE DATABASE shop;
    CREATE USER shop_owner@'127.0.0.1' IDENTIFIED BY '$APP_DB_PASSWORD';
    GRANT ALL ON shop.* TO shop_owner@'127.0.0.1';"
  mariadb --no-defaults --socket="$DEMO/mariadb/sock" --user=root shop <"$ROOT/fixtures/demo/shop_mysql.sql"
fi

[ -f "$DEMO/certs/server.crt" ] || "$SQLGATE" cert --out "$DEMO/certs" >/dev/null
# The example policy, with the CI rule on the demo's targets.
mkdir -p "$DEMO/policies"
sed 's/^targets = \["app"\]/targets = ["shop", "shop_mysql"]/' "$ROOT/policies/agents.toml" >"$DEMO/policies/agents.toml"
cp "$ROOT/policies/masking.toml" "$DEMO/policies/masking.toml"
cat >"$DEMO/sqlgate.toml" <<TOML
# The demo configuration (written by scripts/demo.sh).
[postgres]
listen = "127.0.0.1:$GW_PORT"
tls_cert = "certs/server.crt"
tls_key  = "certs/server.key"

[[target]]
name = "shop"                       # clients choose it as the database name
kind = "postgres"
host = "127.0.0.1"
port = $PG_PORT
database = "shop"
user = "shop_owner"                 # only the gateway knows this user...
password_env = "APP_DB_PASSWORD"    # ...and its password
pool_size = 10

[mysql]
listen = "127.0.0.1:$GW_MY_PORT"
tls_cert = "certs/server.crt"
tls_key  = "certs/server.key"

[[target]]
name = "shop_mysql"                 # the same shop on MariaDB
kind = "mysql"
host = "127.0.0.1"
port = $MY_PORT
database = "shop"
user = "shop_owner"
password_env = "APP_DB_PASSWORD"
pool_size = 10

[[user]]
name = "agent"
password_env = "SQLGATE_AGENT_PASSWORD"
groups = ["agents"]
targets = ["shop", "shop_mysql"]

[[user]]
name = "ci"
password_env = "SQLGATE_CI_PASSWORD"
targets = ["shop", "shop_mysql"]

[policy]
files = ["policies/*.toml"]         # reloaded on SIGHUP

[store]
path = "recordings.db"              # every session recorded (SQLite)

[recording]
signing_key_file = "audit.key"      # checkpoints signed (sqlgate keygen)

[admin]
listen = "127.0.0.1:$ADMIN_PORT"    # /metrics, /healthz, the approvals API

[[admin.token]]                     # the DBA who approves held statements
user = "dana"
groups = ["dba"]
token_env = "SQLGATE_DBA_TOKEN"
TOML
[ -f "$DEMO/audit.key" ] || "$SQLGATE" keygen --out "$DEMO" >/dev/null
"$SQLGATE" check --config "$DEMO/sqlgate.toml"

cat <<MSG

sqlgate is starting on 127.0.0.1:$GW_PORT in front of the demo database "shop".
Connect as the gateway user "agent" (the server's own credentials stay inside sqlgate):

  PGPASSWORD=$SQLGATE_AGENT_PASSWORD psql "host=localhost port=$GW_PORT dbname=shop user=agent sslmode=verify-full sslrootcert=$DEMO/certs/server.crt"

Try: \\dt   SELECT * FROM customers LIMIT 3;   SELECT current_user;
Emails, national ids and cards come back masked (demo/policies/masking.toml),
however the query is written:   SELECT lower(email) || '' FROM customers;
The example policy (demo/policies/agents.toml) lets "agent" read; its writes
wait for a DBA's approval and DDL is refused:   DELETE FROM orders WHERE id = 1;
psql shows "held for approval #1" and waits; from another terminal, as the DBA:

  SQLGATE_ADMIN_TOKEN=$SQLGATE_DBA_TOKEN $SQLGATE approvals list --admin-url http://127.0.0.1:$ADMIN_PORT
  SQLGATE_ADMIN_TOKEN=$SQLGATE_DBA_TOKEN $SQLGATE approvals approve 1 --admin-url http://127.0.0.1:$ADMIN_PORT
  (or: approvals deny 1 --reason "not today")

"ci" (password $SQLGATE_CI_PASSWORD) may migrate; its DROP waits for two DBAs.
See how a statement is judged without running it:

  $SQLGATE explain --config $DEMO/sqlgate.toml --user agent --target shop "DELETE FROM orders"
  $SQLGATE explain --config $DEMO/sqlgate.toml --user agent --target shop "SELECT name, email, ssn FROM customers"

The same shop on MariaDB, through sqlgate's MySQL listener on 127.0.0.1:$GW_MY_PORT:

  mariadb --host=127.0.0.1 --port=$GW_MY_PORT --user=agent --password=$SQLGATE_AGENT_PASSWORD --ssl --ssl-ca=$DEMO/certs/server.crt shop_mysql

Every session is recorded (demo/recordings.db); from another terminal:

  $SQLGATE sessions list --config $DEMO/sqlgate.toml
  $SQLGATE sessions show --config $DEMO/sqlgate.toml <id>
  $SQLGATE sessions replay --config $DEMO/sqlgate.toml <id> --no-wait   # results as the client saw them
  $SQLGATE audit verify --config $DEMO/sqlgate.toml --public-key $DEMO/audit.pub

Every statement is logged below. Ctrl-C stops sqlgate and the demo servers.

MSG
RUST_LOG=${RUST_LOG:-info,sqlgate::statement=debug} "$SQLGATE" serve --config "$DEMO/sqlgate.toml"
