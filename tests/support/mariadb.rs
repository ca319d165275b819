//! Throwaway MariaDB servers for the tests: mariadb-install-db in a temp
//! dir, a free port, password authentication. As root (CI), mariadbd runs
//! with `--user=mysql`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use super::pg::free_port;

pub const ROOT_PW: &str = "root-pw";
pub const APP_OWNER_PW: &str = "my-app-owner-pw";

pub struct MariaDb {
    pub port: u16,
    dir: PathBuf,
    child: Child,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl MariaDb {
    pub fn start() -> MariaDb {
        let dir = tempfile::Builder::new()
            .prefix("sqlgate-my-")
            .tempdir()
            .unwrap()
            .keep();
        let data = dir.join("data");
        let root = is_root();
        let mut install = Command::new("mariadb-install-db");
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
        if root {
            Command::new("chown")
                .args(["-R", "mysql:mysql"])
                .arg(&dir)
                .status()
                .unwrap();
            install.arg("--user=mysql");
        }
        let out = install
            .output()
            .expect("mariadb-install-db runs (install mariadb-server)");
        assert!(
            out.status.success(),
            "mariadb-install-db: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let child = spawn(&dir, port);
        let server = MariaDb { port, dir, child };
        server.wait_until_up();
        server.sql(&format!(
            "ALTER USER root@localhost IDENTIFIED BY '{ROOT_PW}';
             CREATE OR REPLACE USER root@'127.0.0.1' IDENTIFIED BY '{ROOT_PW}';
             GRANT ALL ON *.* TO root@'127.0.0.1' WITH GRANT OPTION;
             CREATE DATABASE app;
             CREATE USER app_owner@'%' IDENTIFIED BY '{APP_OWNER_PW}';
             GRANT ALL ON app.* TO app_owner@'%';"
        ));
        server
    }

    fn wait_until_up(&self) {
        // mariadb-admin retries by itself until the server answers.
        let ok = Command::new("mariadb-admin")
            .arg(format!("--socket={}", self.dir.join("sock").display()))
            .args(["--user=root", "--wait=60", "--connect-timeout=2", "ping"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "mariadbd did not come up: {}", self.log());
    }

    /// Stops the server (SIGKILL: every connection breaks at once).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a stopped server again on the same port and data.
    pub fn start_again(&mut self) {
        self.child = spawn(&self.dir, self.port);
        self.wait_until_up();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("err.log")).unwrap_or_default()
    }

    /// Runs SQL as root over the socket, directly.
    pub fn sql(&self, sql: &str) -> String {
        let out = Command::new("mariadb")
            .arg(format!("--socket={}", self.dir.join("sock").display()))
            .args(["--user=root", "-N", "-B"])
            .arg(format!("--password={ROOT_PW}"))
            .arg("-e")
            .arg(sql)
            .output()
            .unwrap();
        let out = if out.status.success() {
            out
        } else {
            // Before the root password is set.
            Command::new("mariadb")
                .arg(format!("--socket={}", self.dir.join("sock").display()))
                .args(["--user=root", "-N", "-B", "-e"])
                .arg(sql)
                .output()
                .unwrap()
        };
        assert!(
            out.status.success(),
            "mariadb {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A mysql_async URL straight to the server as app_owner.
    pub fn direct_url(&self) -> String {
        format!(
            "mysql://app_owner:{APP_OWNER_PW}@127.0.0.1:{}/app",
            self.port
        )
    }
}

fn spawn(dir: &std::path::Path, port: u16) -> Child {
    let mut cmd = Command::new("mariadbd");
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", dir.join("data").display()))
        .arg(format!("--socket={}", dir.join("sock").display()))
        .arg(format!("--pid-file={}", dir.join("pid").display()))
        .arg(format!("--log-error={}", dir.join("err.log").display()))
        .arg(format!("--port={port}"))
        .args([
            "--bind-address=127.0.0.1",
            "--max-allowed-packet=64M",
            "--innodb-buffer-pool-size=64M",
            "--innodb-flush-log-at-trx-commit=0",
            "--skip-name-resolve",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if is_root() {
        cmd.arg("--user=mysql");
    }
    cmd.spawn().expect("mariadbd starts")
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The server most MySQL tests share; a watchdog stops it when the test
/// process is gone.
pub fn shared() -> &'static MariaDb {
    static SHARED: OnceLock<MariaDb> = OnceLock::new();
    SHARED.get_or_init(|| {
        let server = MariaDb::start();
        super::after_this_process(&format!(
            "kill {child} 2>/dev/null; sleep 2; rm -rf '{dir}'",
            child = server.child.id(),
            dir = server.dir.display()
        ));
        server
    })
}
