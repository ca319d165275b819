#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests and the integration
# tests against throwaway PostgreSQL and MariaDB servers (started by the
# tests themselves in temp dirs; nothing on the machine is touched).
# Installs PostgreSQL and MariaDB from the distribution's packages when
# they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
missing=()
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v pgbench >/dev/null || ! command -v psql >/dev/null; then
  missing+=(postgresql postgresql-contrib)
fi
if ! command -v mariadb-install-db >/dev/null || ! command -v mariadbd >/dev/null || ! command -v mariadb >/dev/null; then
  missing+=(mariadb-server mariadb-client)
fi
command -v sysbench >/dev/null || missing+=(sysbench)
# The tests' OIDC issuer makes its RSA keys with openssl.
command -v openssl >/dev/null || missing+=(openssl)
# JDBC drivers for the token-login tests (tests/tools/TokenLogin.java).
command -v java >/dev/null || missing+=(default-jdk-headless)
[ -f /usr/share/java/postgresql.jar ] || missing+=(libpostgresql-jdbc-java)
[ -f /usr/share/java/mariadb-java-client.jar ] || missing+=(libmariadb-java)
command -v python3 >/dev/null && python3 -c "import venv, ensurepip" 2>/dev/null || missing+=(python3 python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The Python tools some tests drive through the gateway (SQLAlchemy,
# alembic and their drivers), in a virtual environment of their own.
if ! target/pytools/bin/python3 -c "import sqlalchemy, alembic, psycopg2, pymysql" 2>/dev/null; then
  echo "== installing the Python tools into target/pytools"
  python3 -m venv target/pytools
  target/pytools/bin/pip install -q -r tests/tools/requirements.txt
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --workspace --quiet 2>&1
