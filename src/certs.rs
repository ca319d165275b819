//! `sqlgate cert`: a self-signed certificate and key for local use, so
//! that TLS can be tried without a CA. Not for production.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// Writes `server.crt` and `server.key` into `dir` for the given names
/// (DNS names or IP addresses) and returns their paths.
pub fn self_signed(dir: &Path, names: &[String]) -> anyhow::Result<(PathBuf, PathBuf)> {
    let cert = rcgen::generate_simple_self_signed(names.to_vec())
        .context("cannot generate a certificate")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let crt = dir.join("server.crt");
    let key = dir.join("server.key");
    std::fs::write(&crt, cert.cert.pem())
        .with_context(|| format!("cannot write {}", crt.display()))?;
    write_private(&key, cert.signing_key.serialize_pem().as_bytes())?;
    Ok((crt, key))
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}
