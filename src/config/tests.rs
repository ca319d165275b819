use super::*;

const EXAMPLE: &str = r#"
[postgres]
listen = "127.0.0.1:6432"
# tls_cert = "certs/server.crt"
# tls_key  = "certs/server.key"

[[target]]
name = "app"              # clients choose it as the database name
kind = "postgres"
host = "127.0.0.1"
port = 5432
database = "app"
user = "app_owner"
password_env = "SQLGATE_TEST_APP_DB_PASSWORD"   # or password_file = "..."
pool_size = 20

[[user]]
name = "agent"
password_env = "SQLGATE_TEST_AGENT_PASSWORD"   # or a SCRAM verifier
groups = ["agents"]
targets = ["app"]
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("sqlgate.toml"), text)
}

#[test]
fn the_documented_example_loads() {
    std::env::set_var("SQLGATE_TEST_APP_DB_PASSWORD", "server-pw");
    std::env::set_var("SQLGATE_TEST_AGENT_PASSWORD", "agent-pw");
    let c = parse(EXAMPLE).unwrap();
    let t = c.target("app").unwrap();
    assert_eq!(
        (t.port, t.pool_size, t.user.as_str()),
        (5432, 20, "app_owner")
    );
    assert_eq!(t.password.as_ref().unwrap().expose(), "server-pw");
    assert!(c.users[0].secret.verify_password(b"agent-pw"));
    assert!(c.users[0].may_use("app") && !c.users[0].may_use("other"));
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let err = parse("[postgres]\nlisen = \"x\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("sqlgate.toml:2:"), "{err}");
    assert!(err.contains("lisen"), "{err}");
}

#[test]
fn missing_env_var_is_named_and_every_problem_reported() {
    let text = EXAMPLE
        .replace("SQLGATE_TEST_APP_DB_PASSWORD", "SQLGATE_TEST_UNSET_1")
        .replace("targets = [\"app\"]", "targets = [\"nope\"]");
    std::env::set_var("SQLGATE_TEST_AGENT_PASSWORD", "agent-pw");
    let err = parse(&text).unwrap_err();
    assert_eq!(err.problems.len(), 2, "{err}");
    assert!(err.problems[0].contains("sqlgate.toml:14: target \"app\" password_env: environment variable SQLGATE_TEST_UNSET_1 is not set"), "{err}");
    assert!(
        err.problems[1].contains(":21: user \"agent\" targets: no target named \"nope\""),
        "{err}"
    );
}

#[test]
fn secret_values_never_appear_in_errors() {
    std::env::set_var("SQLGATE_TEST_SECRET_VALUE", "do-not-print-me");
    let text = "[[user]]\nname = \"u\"\npassword_env = \"SQLGATE_TEST_SECRET_VALUE\"\nauth = \"plain\"\ntargets = []\n";
    let err = parse(text).unwrap_err().to_string();
    assert!(err.contains("unknown method \"plain\""), "{err}");
    assert!(!err.contains("do-not-print-me"));
}
