# Shared by the PostgreSQL recording benchmarks (sourced, not run): the
# policy that judges every statement of the bench user, and the gateway's
# configuration in front of the bench database.

# bench_policy USER: a policy allowing the bench's statements, each judged.
bench_policy() {
cat <<TOML
[[rule]]
name = "bench"
users = ["$1"]
targets = ["*"]
allow = ["read", "write", "tx", "session"]
TOML
}

# gateway_config PORT RECORDING DB POLICY_FILE: sqlgate on 127.0.0.1:PORT
# in front of DB on $PGHOST:$PGPORT as $PGUSER, recording on or off.
gateway_config() {
cat <<TOML
[postgres]
listen = "127.0.0.1:$1"

[[target]]
name = "$3"
kind = "postgres"
host = "$PGHOST"
port = $PGPORT
database = "$3"
user = "$PGUSER"
password_env = "PGPASSWORD"
pool_size = 20

[[user]]
name = "$PGUSER"
password_env = "PGPASSWORD"
targets = ["$3"]

[policy]
files = ["$4"]

[recording]
enabled = $2
TOML
}
