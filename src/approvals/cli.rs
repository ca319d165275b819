//! `sqlgate approvals list | show ID | approve ID | deny ID`: a client of
//! the admin API (`--admin-url`, the token from `SQLGATE_ADMIN_TOKEN`), so
//! that who decides is the token's person, as for any other way in.
//!
//! It must never print the token, nor take an identity from anywhere but
//! the token.

use std::fmt::Write as _;

use serde_json::Value;

use crate::store::table::printable;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// No token to present.
    #[error("set SQLGATE_ADMIN_TOKEN to your [[admin.token]] token")]
    NoToken,
    /// The admin API could not be reached.
    #[error("cannot reach the admin API at {url}: {why}")]
    Unreachable {
        /// Where.
        url: String,
        /// Why.
        why: String,
    },
    /// `SQLGATE_ADMIN_CA` names no readable PEM certificate.
    #[error("SQLGATE_ADMIN_CA: {0}")]
    BadCa(String),
    /// The API refused (its status and message).
    #[error("{status}: {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// What the API said.
        message: String,
    },
}

/// A client of one gateway's admin API.
pub struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client of `admin_url` with the token in `SQLGATE_ADMIN_TOKEN`;
    /// an `https://` listener's certificate is checked against
    /// `SQLGATE_ADMIN_CA` (a PEM file) when set, else the system's roots.
    pub fn from_env(admin_url: &str) -> Result<Client, CliError> {
        let token = std::env::var("SQLGATE_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .ok_or(CliError::NoToken)?;
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(30)));
        if let Some(ca) = std::env::var_os("SQLGATE_ADMIN_CA") {
            let pem = std::fs::read(&ca)
                .map_err(|e| CliError::BadCa(format!("{}: {e}", ca.to_string_lossy())))?;
            let cert = ureq::tls::Certificate::from_pem(&pem)
                .map_err(|e| CliError::BadCa(format!("{}: {e}", ca.to_string_lossy())))?;
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
                        cert,
                    ])))
                    .build(),
            );
        }
        let agent = config.build().into();
        Ok(Client {
            base: admin_url.trim_end_matches('/').to_owned(),
            token: token.trim().to_owned(),
            agent,
        })
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, CliError> {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {}", self.token);
        let sent = match (method, body) {
            ("POST", Some(b)) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .send_json(b),
            _ => self.agent.get(&url).header("Authorization", &auth).call(),
        };
        let mut response = sent.map_err(|e| CliError::Unreachable {
            url: self.base.clone(),
            why: e.to_string(),
        })?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_string()
            .unwrap_or_default();
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            return Err(CliError::Refused {
                status,
                message: json["error"].as_str().unwrap_or(text.trim()).to_owned(),
            });
        }
        Ok(json)
    }

    /// Every request the gateway keeps, newest first, as a table.
    pub fn list(&self) -> Result<String, CliError> {
        let list = self.call("GET", "/api/approvals", None)?;
        let mut out = format!(
            "{:>5}  {:<10} {:<12} {:<12} {:<16} {}\n",
            "id", "state", "requester", "target", "rule", "statement"
        );
        for r in list.as_array().into_iter().flatten() {
            let first = r["statements"][0]["text"].as_str().unwrap_or("");
            let first: String = first.split_whitespace().collect::<Vec<_>>().join(" ");
            let cut: String = first.chars().take(60).collect();
            let _ = writeln!(
                out,
                "{:>5}  {:<10} {:<12} {:<12} {:<16} {}{}",
                r["id"].as_u64().unwrap_or(0),
                r["state"]["state"].as_str().unwrap_or("?"),
                r["requester"]["user"].as_str().unwrap_or("?"),
                r["target"].as_str().unwrap_or("?"),
                r["rule"].as_str().unwrap_or("?"),
                cut,
                if cut.len() < first.len() { "..." } else { "" }
            );
        }
        Ok(out)
    }

    /// One request, in full.
    pub fn show(&self, id: u64) -> Result<String, CliError> {
        Ok(describe(&self.call(
            "GET",
            &format!("/api/approvals/{id}"),
            None,
        )?))
    }

    /// Approves request `id`.
    pub fn approve(&self, id: u64, reason: Option<&str>) -> Result<String, CliError> {
        let body = serde_json::json!({ "reason": reason });
        let r = self.call("POST", &format!("/api/approvals/{id}/approve"), Some(body))?;
        Ok(describe(&r))
    }

    /// Denies request `id`.
    pub fn deny(&self, id: u64, reason: &str) -> Result<String, CliError> {
        let body = serde_json::json!({ "reason": reason });
        let r = self.call("POST", &format!("/api/approvals/{id}/deny"), Some(body))?;
        Ok(describe(&r))
    }

    /// The sessions open now on the gateway, as a table.
    pub fn live_sessions(&self) -> Result<String, CliError> {
        let list = self.call("GET", "/api/sessions/live", None)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut out = format!(
            "{:<9} {:>11}  {:<14} {:<14} {:<22} {}\n",
            "protocol", "id", "user", "target", "client", "open for"
        );
        for s in list.as_array().into_iter().flatten() {
            let open = now.saturating_sub(s["started"].as_u64().unwrap_or(now));
            let _ = writeln!(
                out,
                "{:<9} {:>11}  {:<14} {:<14} {:<22} {}s",
                s["protocol"].as_str().unwrap_or("?"),
                s["id"].as_u64().unwrap_or(0),
                printable(s["user"].as_str().unwrap_or("?")),
                printable(s["target"].as_str().unwrap_or("?")),
                s["client"].as_str().unwrap_or("?"),
                open
            );
        }
        Ok(out)
    }

    /// Ends an open session at its next idle point.
    pub fn end_session(&self, protocol: &str, id: u64) -> Result<String, CliError> {
        self.call(
            "POST",
            &format!("/api/sessions/live/{protocol}/{id}/end"),
            Some(serde_json::json!({})),
        )?;
        Ok(format!(
            "{protocol} session {id} ends at its next idle point (a running statement completes first)\n"
        ))
    }
}

/// A request as a person reads it.
fn describe(r: &Value) -> String {
    let mut out = String::new();
    let state = &r["state"];
    let _ = writeln!(
        out,
        "request #{}: {}{}",
        r["id"],
        state["state"].as_str().unwrap_or("?"),
        match (state["by"].as_str(), state["reason"].as_str()) {
            (Some(by), Some(why)) => format!(" by {by}: {why}"),
            _ => String::new(),
        }
    );
    let _ = writeln!(
        out,
        "requester: {} (groups: {})",
        r["requester"]["user"].as_str().unwrap_or("?"),
        joined(&r["requester"]["groups"])
    );
    let _ = writeln!(
        out,
        "target: {}  session: {}  client: {}{}",
        r["target"].as_str().unwrap_or("?"),
        r["session"].as_str().unwrap_or("?"),
        r["client"].as_str().unwrap_or("?"),
        r["application"]
            .as_str()
            .map(|a| format!("  application: {a}"))
            .unwrap_or_default()
    );
    let review = &r["review"];
    let _ = writeln!(
        out,
        "rule: {}  needs {} approval(s) from {}  timeout {}s",
        r["rule"].as_str().unwrap_or("?"),
        review["approvals"],
        joined(&review["approvers"]),
        review["timeout"]
    );
    for a in r["approvals"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "approved by {}{}",
            a["by"].as_str().unwrap_or("?"),
            a["reason"]
                .as_str()
                .map(|s| format!(": {s}"))
                .unwrap_or_default()
        );
    }
    for (i, s) in r["statements"].as_array().into_iter().flatten().enumerate() {
        let tags = joined(&s["tags"]);
        let _ = writeln!(
            out,
            "\n#{} [{}]{}\n  {}",
            i + 1,
            tags,
            if s["reviewed"].as_bool() == Some(true) {
                " (reviewed)"
            } else {
                ""
            },
            printable(s["text"].as_str().unwrap_or("")).replace('\n', "\n  ")
        );
        if let Some(p) = s["parameters"].as_array() {
            let values: Vec<String> = p
                .iter()
                .map(|v| v.as_str().map_or("NULL".to_owned(), |s| format!("'{s}'")))
                .collect();
            let _ = writeln!(out, "  parameters: {}", values.join(", "));
        }
        if let Some(reach) = s["reach"].as_str() {
            let _ = writeln!(out, "  reach: {}", printable(reach));
        }
        if let Some(fingerprint) = s["fingerprint"].as_str() {
            let _ = writeln!(out, "  fingerprint: {}", printable(fingerprint));
        }
        if s["parameters_withheld"].as_bool() == Some(true) {
            let _ = writeln!(
                out,
                "  parameters: withheld (the statement may bind a secret)"
            );
        }
    }
    out
}

/// A JSON list of strings, comma-separated.
fn joined(list: &Value) -> String {
    list.as_array()
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}
