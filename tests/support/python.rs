//! The Python tools (SQLAlchemy, alembic and their drivers) some tests
//! drive through the gateway, as agents and CI pipelines do. They live in
//! a virtual environment `scripts/test.sh` makes (`target/pytools`);
//! `SQLGATE_PYTHON` names another interpreter that has them.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The interpreter with the tools.
pub fn interpreter() -> PathBuf {
    if let Some(p) = std::env::var_os("SQLGATE_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/pytools/bin/python3");
    assert!(
        venv.exists(),
        "{} is missing: scripts/test.sh makes it (python3 -m venv target/pytools && \
         target/pytools/bin/pip install -r tests/tools/requirements.txt)",
        venv.display()
    );
    venv
}

/// Runs one of `tests/tools/*.py` with these arguments.
pub fn run(script: &str, args: &[&str]) -> Output {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tools")
        .join(script);
    Command::new(interpreter())
        .arg(path)
        .args(args)
        .output()
        .expect("python runs")
}
