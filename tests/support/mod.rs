//! Test support: real servers and a real gateway, no mocks.

#![allow(dead_code)]

pub mod approvals;
pub mod barrage;
pub mod binary;
pub mod canary;
pub mod gateway;
pub mod issuer;
pub mod mariadb;
pub mod panics;
pub mod pg;
pub mod python;
pub mod raw;
pub mod recording;
pub mod token_tools;

/// A fuzz test's setting from the environment (`SQLGATE_FUZZ_SEED`,
/// `SQLGATE_FUZZ_SESSIONS`), or its default: fixed in CI, longer outside.
pub fn fuzz_setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Runs `cleanup` (a shell command) once this test process has exited:
/// shared servers live as long as the process and are stopped after it.
pub fn after_this_process(cleanup: &str) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {cleanup}",
        pid = std::process::id()
    );
    // Deliberately not waited for: it must outlive this process.
    #[allow(clippy::zombie_processes)]
    std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("watchdog");
}
