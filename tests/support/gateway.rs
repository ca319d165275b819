//! A gateway started in-process on a free port, configured from TOML text
//! the same way the binary is.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use sqlgate::config::Config;
use sqlgate::server::Running;

use super::pg::{PgServer, APP_OWNER_PW};

pub const AGENT_PW: &str = "agent-pw";

/// A configuration under construction: a temp dir for password files and
/// the TOML text.
pub struct TestConfig {
    pub dir: tempfile::TempDir,
    pub toml: String,
}

impl TestConfig {
    /// The PostgreSQL listener on a free port, target `app` on `pg` as
    /// `app_owner` (SCRAM), user `agent` allowed on it.
    pub fn new(pg: &PgServer) -> TestConfig {
        let dir = tempfile::tempdir().unwrap();
        let mut c = TestConfig {
            dir,
            toml: "[postgres]\nlisten = \"127.0.0.1:0\"\n".to_owned(),
        };
        c.secret("app.pw", APP_OWNER_PW);
        c.secret("agent.pw", AGENT_PW);
        c.target("app", pg.port, "app_owner", Some("app.pw"), "");
        c.user("agent", "agent.pw", &["app"], "");
        c
    }

    /// The MySQL listener on a free port, target `app` on `my` as
    /// `app_owner`, user `agent` allowed on it.
    pub fn mysql(my: &super::mariadb::MariaDb) -> TestConfig {
        let dir = tempfile::tempdir().unwrap();
        let mut c = TestConfig {
            dir,
            toml: "[mysql]\nlisten = \"127.0.0.1:0\"\n".to_owned(),
        };
        c.secret("app.pw", super::mariadb::APP_OWNER_PW);
        c.secret("agent.pw", AGENT_PW);
        c.toml.push_str(&format!(
            "\n[[target]]\nname = \"app\"\nkind = \"mysql\"\nhost = \"127.0.0.1\"\nport = {}\n\
             database = \"app\"\nuser = \"app_owner\"\npassword_file = \"app.pw\"\n",
            my.port
        ));
        c.user("agent", "agent.pw", &["app"], "");
        c
    }

    /// The repository's example policy (`policies/agents.toml`, as
    /// written) plus `extra` rules in a second file, and its identities on
    /// `targets`: `bot` (group `agents`), `ci`, and `viewer` (group
    /// `viewers`, which `extra` may give rules).
    pub fn with_example_policy(&mut self, targets: &[&str], extra: &str) {
        let dir = self.path().join("policies");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/agents.toml"),
            dir.join("agents.toml"),
        )
        .unwrap();
        if !extra.is_empty() {
            std::fs::write(dir.join("extra.toml"), extra).unwrap();
        }
        self.toml.push_str(
            "
[policy]
files = [\"policies/*.toml\"]
",
        );
        for (name, groups) in [
            ("bot", "groups = [\"agents\"]"),
            ("ci", ""),
            ("viewer", "groups = [\"viewers\"]"),
        ] {
            self.secret(&format!("{name}.pw"), &format!("{name}-pw"));
            self.user(name, &format!("{name}.pw"), targets, groups);
        }
    }

    /// Writes a password file next to the config.
    pub fn secret(&mut self, name: &str, value: &str) {
        std::fs::write(self.dir.path().join(name), format!("{value}\n")).unwrap();
    }

    /// Adds a `[[target]]`.
    pub fn target(
        &mut self,
        name: &str,
        port: u16,
        user: &str,
        password_file: Option<&str>,
        extra: &str,
    ) {
        let pw = password_file
            .map(|f| format!("password_file = \"{f}\"\n"))
            .unwrap_or_default();
        self.toml.push_str(&format!(
            "\n[[target]]\nname = \"{name}\"\nkind = \"postgres\"\nhost = \"127.0.0.1\"\nport = {port}\n\
             database = \"app\"\nuser = \"{user}\"\n{pw}{extra}\n"
        ));
    }

    /// Adds a `[[user]]`.
    pub fn user(&mut self, name: &str, password_file: &str, targets: &[&str], extra: &str) {
        let targets: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        self.toml.push_str(&format!(
            "\n[[user]]\nname = \"{name}\"\npassword_file = \"{password_file}\"\ntargets = [{}]\n{extra}\n",
            targets.join(", ")
        ));
    }

    /// Moves the PostgreSQL listener to a free port (for the gateway as a
    /// child process, whose port the test must know) and returns it.
    pub fn on_free_port(&mut self) -> u16 {
        let port = super::pg::free_port();
        self.toml = self
            .toml
            .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
        port
    }

    /// Inserts lines into the `[postgres]` section.
    pub fn listener(&mut self, lines: &str) {
        self.section("postgres", lines);
    }

    /// Inserts lines at the top of a section.
    pub fn section(&mut self, name: &str, lines: &str) {
        let header = format!("[{name}]\n");
        self.toml = self
            .toml
            .replacen(&header, &format!("{header}{lines}\n"), 1);
    }

    /// A self-signed certificate for `names`, served by `section`'s
    /// listener; returns the certificate (the CA clients trust).
    pub fn with_tls(&mut self, section: &str, names: &[&str]) -> PathBuf {
        sqlgate::install_crypto_provider();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let (crt, key) = sqlgate::certs::self_signed(&self.path().join("certs"), &names).unwrap();
        self.section(
            section,
            &format!(
                "tls_cert = \"{}\"\ntls_key = \"{}\"",
                crt.display(),
                key.display()
            ),
        );
        crt
    }

    /// Points every `[[target]]` at another server port as another user.
    pub fn retarget(
        &mut self,
        from_port: u16,
        to_port: u16,
        user: &str,
        password_file: &str,
        extra: &str,
    ) {
        self.toml = self
            .toml
            .replace(&format!("port = {from_port}"), &format!("port = {to_port}"))
            .replace("user = \"app_owner\"", &format!("user = \"{user}\""))
            .replace(
                "password_file = \"app.pw\"",
                &format!("password_file = \"{password_file}\"\n{extra}"),
            );
    }

    /// Adds a line to every `[[target]]`.
    pub fn target_setting(&mut self, line: &str) {
        self.toml = self.toml.replace("kind = ", &format!("{line}\nkind = "));
    }

    /// Writes the file and returns its path.
    pub fn write(&self) -> PathBuf {
        let path = self.dir.path().join("sqlgate.toml");
        std::fs::write(&path, &self.toml).unwrap();
        path
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Starts the gateway in this process.
    pub async fn start(&self) -> Gateway {
        sqlgate::install_crypto_provider();
        let config =
            Config::load(&self.write()).unwrap_or_else(|e| panic!("config: {e}\n{}", self.toml));
        let running = sqlgate::server::start(&config)
            .await
            .expect("gateway starts");
        Gateway { running }
    }
}

pub struct Gateway {
    pub running: Running,
}

impl Gateway {
    pub fn addr(&self) -> SocketAddr {
        self.running.postgres_addr.unwrap()
    }

    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    /// Waits until the gateway has read target `app`'s catalog and it
    /// holds `relation` (a condition, polled; not a guessed delay).
    pub async fn catalog_has(&self, relation: &str) {
        use sqlgate::policy::mask::lineage::Catalog;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self
            .running
            .engine
            .catalog("app")
            .is_none_or(|c| c.relation(None, relation).is_none())
        {
            assert!(
                std::time::Instant::now() < deadline,
                "catalog never held {relation}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Waits until the gateway has read target `app`'s catalog.
    pub async fn catalog_read(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.running.engine.catalog("app").is_none() {
            assert!(std::time::Instant::now() < deadline, "catalog never read");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Where the MySQL listener is.
    pub fn mysql_port(&self) -> u16 {
        self.running.mysql_addr.unwrap().port()
    }

    /// A mysql_async URL through the gateway.
    pub fn mysql_url(&self, user: &str, password: &str, db: &str) -> String {
        format!(
            "mysql://{user}:{password}@127.0.0.1:{}/{db}",
            self.mysql_port()
        )
    }

    /// A tokio-postgres connection string through the gateway.
    pub fn conn_str(&self, user: &str, password: &str, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={user} password={password} dbname={db}",
            self.port()
        )
    }

    /// Connects as `agent` to `app` and drives the connection in the
    /// background.
    pub async fn agent(&self) -> tokio_postgres::Client {
        connect(&self.conn_str("agent", AGENT_PW, "app")).await
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.running.shutdown.cancel();
    }
}

/// Connects with tokio-postgres (no TLS) and spawns the connection.
pub async fn connect(conn_str: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(conn_str, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect {conn_str}: {e}"));
    tokio::spawn(conn);
    client
}
