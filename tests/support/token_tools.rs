//! The tests' own token clients (`tests/tools`: Python and JDBC), run
//! with the token in their environment, as an agent's or a pipeline's
//! driver would log in.

use std::path::Path;

/// The tests' own token clients (`tests/tools`): `psycopg2` and
/// `pymysql` (Python), `postgresql` and `mariadb` (JDBC), logging in to
/// the gateway at `port` as `github` on `app`, trusting `ca`.
pub fn token_tool(driver: &str, port: u16, ca: &Path) -> std::process::Command {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools");
    let mut cmd = match driver {
        "psycopg2" | "pymysql" => {
            let mut c = std::process::Command::new(super::python::interpreter());
            c.arg(tools.join("token_login.py"));
            c
        }
        _ => {
            let jar = if driver == "postgresql" {
                "postgresql.jar"
            } else {
                "mariadb-java-client.jar"
            };
            let mut c = std::process::Command::new("java");
            c.args(["-cp", &format!("/usr/share/java/{jar}")])
                .arg(tools.join("TokenLogin.java"));
            c
        }
    };
    cmd.args([driver, &port.to_string(), "github", "app"])
        .arg(ca);
    cmd
}

/// Runs a client with the token in its environment (`TOKEN`, never its
/// arguments); its output, trimmed, once it succeeded.
pub async fn run_with_token(mut cmd: std::process::Command, token: &str) -> String {
    cmd.env("TOKEN", token);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("the client runs"))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
