#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests and the integration
# tests against throwaway PostgreSQL servers (started by the tests
# themselves in temp dirs; nothing on the machine is touched).
# Installs PostgreSQL from the distribution's packages when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v pgbench >/dev/null || ! command -v psql >/dev/null; then
  echo "== installing PostgreSQL (server, psql, pgbench)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql postgresql-contrib >/dev/null
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --workspace --quiet 2>&1
