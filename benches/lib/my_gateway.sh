# Shared by the MySQL benchmarks (sourced, not run): sqlgate's
# configuration in front of the bench database with a policy judging
# every statement, and HAProxy forwarding TCP (the reference proxy).
# Uses $DB, $MYHOST, $MYPORT; the gateway reads the bench user's password
# from $SQLGATE_BENCH_PW.

# my_bench_policy: a policy allowing the bench user's statements, each judged.
my_bench_policy() {
cat <<TOML
[[rule]]
name = "bench"
users = ["sqlgate_bench"]
targets = ["*"]
allow = ["read", "write", "tx", "session"]
TOML
}

# my_gateway_config PORT RECORDING: sqlgate on 127.0.0.1:PORT with the
# policy file bench-policy.toml beside its config, recording on or off.
my_gateway_config() {
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

[policy]
files = ["bench-policy.toml"]

[recording]
enabled = $2
TOML
}

# haproxy_config PORT: HAProxy on 127.0.0.1:PORT, one thread, plain TCP
# to the server.
haproxy_config() {
cat <<CFG
global
    nbthread 1
    maxconn 1000
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
listen mysql
    bind 127.0.0.1:$1
    server db $MYHOST:$MYPORT
CFG
}
