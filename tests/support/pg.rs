//! Throwaway PostgreSQL servers for the tests: initdb in a temp dir, a free
//! port, scram-sha-256 for everyone except the roles that test md5 and
//! trust. As root (CI), initdb and postgres run as the `postgres` user.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

pub const SUPERUSER_PW: &str = "super-pw";
pub const APP_OWNER_PW: &str = "app-owner-pw";
pub const MD5_OWNER_PW: &str = "md5-owner-pw";

pub struct PgServer {
    pub port: u16,
    dir: PathBuf,
    bindir: PathBuf,
    /// Whether this server owns its directory (and stops on drop).
    owned: bool,
}

#[derive(Default)]
pub struct PgOptions {
    /// Serve TLS with this PEM certificate and key.
    pub tls: Option<(PathBuf, PathBuf)>,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn bindir() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect(
            "PostgreSQL server binaries not found: install postgresql (the README's setup does)",
        )
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found
        .pop()
        .expect("no initdb under /usr/lib/postgresql/*/bin")
}

/// A command that runs as the `postgres` user when we are root.
fn as_pg_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PgServer {
    pub fn start(opts: PgOptions) -> PgServer {
        let dir = tempfile::Builder::new()
            .prefix("sqlgate-pg-")
            .tempdir()
            .unwrap()
            .keep();
        let bindir = bindir();
        let data = dir.join("data");
        std::fs::write(dir.join("pwfile"), SUPERUSER_PW).unwrap();
        if let Some((cert, key)) = &opts.tls {
            std::fs::copy(cert, dir.join("server.crt")).unwrap();
            std::fs::copy(key, dir.join("server.key")).unwrap();
        }
        if is_root() {
            run(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&dir),
                "chown",
            );
        }
        run(
            as_pg_user(&bindir.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    "postgres",
                    "--auth=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ])
                .arg(format!("--pwfile={}", dir.join("pwfile").display())),
            "initdb",
        );
        let port = free_port();
        let mut conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 120\n\
             shared_buffers = 32MB\nlog_min_messages = warning\n",
            dir.display()
        );
        if opts.tls.is_some() {
            conf.push_str(&format!(
                "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
                dir.join("server.crt").display(),
                dir.join("server.key").display()
            ));
            run(
                Command::new("chmod").arg("600").arg(dir.join("server.key")),
                "chmod",
            );
        }
        append(&data.join("postgresql.conf"), &conf);
        let hba = std::fs::read_to_string(data.join("pg_hba.conf")).unwrap();
        std::fs::write(
            data.join("pg_hba.conf"),
            format!(
                "host all md5_owner 127.0.0.1/32 md5\nhost all trust_owner 127.0.0.1/32 trust\n{hba}"
            ),
        )
        .unwrap();
        let server = PgServer {
            port,
            dir,
            bindir,
            owned: true,
        };
        server.start_again();
        for sql in [
            format!("CREATE ROLE app_owner LOGIN PASSWORD '{APP_OWNER_PW}'"),
            "CREATE DATABASE app OWNER app_owner".to_owned(),
            format!("SET password_encryption = 'md5'; CREATE ROLE md5_owner LOGIN PASSWORD '{MD5_OWNER_PW}'"),
            "CREATE ROLE trust_owner LOGIN".to_owned(),
            "GRANT ALL ON DATABASE app TO md5_owner, trust_owner".to_owned(),
        ] {
            server.psql("postgres", &sql);
        }
        server
    }

    /// Starts (again) a stopped server and waits until it accepts
    /// connections (`pg_ctl -w`).
    pub fn start_again(&self) {
        run(
            as_pg_user(&self.bindir.join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.join("data"))
                .arg("-l")
                .arg(self.dir.join("log"))
                .args(["-w", "-t", "60", "start"])
                .stdout(Stdio::null()),
            "pg_ctl start",
        );
    }

    /// Stops the server, terminating its sessions (`-m fast`).
    pub fn stop(&self) {
        run(
            as_pg_user(&self.bindir.join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(["-w", "-m", "fast", "stop"])
                .stdout(Stdio::null()),
            "pg_ctl stop",
        );
    }

    /// Runs SQL as the superuser, directly (not through the gateway).
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-d")
            .arg(db)
            .arg("-c")
            .arg(sql)
            .env("PGPASSWORD", SUPERUSER_PW)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Waits until the server's log holds `needle` (a condition, polled;
    /// not a guessed delay).
    pub async fn wait_for_log(&self, needle: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !std::fs::read_to_string(self.dir.join("log"))
            .unwrap_or_default()
            .contains(needle)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the server never logged {needle}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// A tokio-postgres connection string as the superuser, direct.
    pub fn direct_conn_str(&self, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres password={SUPERUSER_PW} dbname={db}",
            self.port
        )
    }

    /// Waits until a server process runs a statement containing `marker`
    /// and satisfying `condition` (SQL over pg_stat_activity): a condition
    /// to wait for, not a guessed delay.
    pub async fn wait_for_backend(&self, condition: &str, marker: &str) {
        let (client, conn) =
            tokio_postgres::connect(&self.direct_conn_str("app"), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(conn);
        let sql = format!(
            "SELECT count(*) FROM pg_stat_activity WHERE {condition} \
             AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()"
        );
        loop {
            let n: i64 = client.query_one(&sql, &[&marker]).await.unwrap().get(0);
            if n == 1 {
                return;
            }
            tokio::task::yield_now().await;
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.owned {
            let _ = as_pg_user(&self.bindir.join("pg_ctl"))
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The server most tests share. It lives as long as the test process: a
/// watchdog stops it and removes its directory when the process is gone.
pub fn shared() -> &'static PgServer {
    static SHARED: OnceLock<PgServer> = OnceLock::new();
    SHARED.get_or_init(|| {
        let mut server = PgServer::start(PgOptions::default());
        server.owned = false;
        let stop = format!(
            "{} -D '{}' -m immediate stop",
            server.bindir.join("pg_ctl").display(),
            server.data().display()
        );
        let stop = if is_root() {
            format!("runuser -u postgres -- {stop}")
        } else {
            stop
        };
        super::after_this_process(&format!(
            "{stop} >/dev/null 2>&1; rm -rf '{dir}'",
            dir = server.dir.display()
        ));
        server
    })
}
