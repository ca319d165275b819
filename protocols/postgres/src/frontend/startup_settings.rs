//! The client's startup settings (application_name, client_encoding,
//! DateStyle, `options=-c ...`), applied to the server connection with one
//! statement that the hook judges like any other, as PostgreSQL would
//! apply them. A setting a rule holds cannot wait during a login: it is
//! refused.
//!
//! This module must never send a setting the judge did not allow, nor a
//! value it did not quote.

use super::*;

impl Gateway {
    /// Applies the client's startup settings (application_name,
    /// client_encoding, DateStyle, `options=-c ...`) to the server
    /// connection with one statement, which the hook judges like any
    /// other; then, when the identity can never write, makes the server
    /// session read-only (after the client's settings, so that they
    /// cannot lift it). Returns the transaction status afterwards.
    pub(super) async fn apply_startup_params(
        &self,
        lease: &mut Lease,
        info: &SessionInfo,
        judge: &mut dyn SessionHooks,
        startup: &Startup,
    ) -> Result<u8, Refusal> {
        let settings = startup_settings(startup)?;
        let set = |k: &str, v: &str| {
            format!(
                "pg_catalog.set_config({}, {}, false)",
                sql_literal(k),
                sql_literal(v)
            )
        };
        let mut calls: Vec<String> = settings.iter().map(|(k, v)| set(k, v)).collect();
        if !calls.is_empty() {
            let sql = format!("SELECT {}", calls.join(", "));
            let refusal = match judge.statement(StatementOrigin::Startup, sql.as_bytes()) {
                crate::hooks::Verdict::Allow(_) => None,
                crate::hooks::Verdict::Refuse(r) => Some(ClientError::from(r)),
                // Its record made durable before it runs.
                // Bounded like the rest of the login.
                crate::hooks::Verdict::Hold { ticket, .. } if !ticket.asks_a_person() => {
                    match tokio::time::timeout(self.config.handshake_timeout, ticket.wait).await {
                        Ok(waited) => waited.err().map(ClientError::from),
                        Err(_) => Some(ClientError::error(
                            SqlState::CONNECTION_FAILURE,
                            "sqlgate: the startup settings could not be recorded in time",
                        )),
                    }
                }
                // Nothing can be told to a client still logging in: the
                // held request is withdrawn as the ticket is dropped.
                crate::hooks::Verdict::Hold { .. } => Some(
                    ClientError::error(
                        SqlState::INSUFFICIENT_PRIVILEGE,
                        "sqlgate: these startup settings need approval, which cannot wait during a login",
                    )
                    .with_hint("connect without them and SET them in the session, where the statement can be held"),
                ),
            };
            if let Some(mut e) = refusal {
                e.severity = crate::messages::error_response::Severity::Fatal;
                e.position = None;
                return Err(Some(e));
            }
        }
        if judge.read_only() {
            calls.push(set("default_transaction_read_only", "on"));
        }
        if calls.is_empty() {
            return Ok(messages::TX_IDLE);
        }
        let sql = format!("SELECT {}", calls.join(", "));
        let outcome = lease.conn().simple_query(&sql).await.map_err(|e| {
            tracing::warn!(session = %info.id, error = %e, "applying startup settings failed");
            Some(e.client_error(&info.target))
        })?;
        if let Some(fields) = outcome.error {
            let get = |c: u8| fields.iter().find(|(k, _)| *k == c).map(|(_, v)| v.clone());
            let mut err = ClientError::fatal(
                SqlState::INVALID_AUTHORIZATION,
                get(b'M').unwrap_or_default(),
            );
            if let Some(code) = get(b'C').as_deref().and_then(SqlState::parse) {
                err.code = code;
            }
            err.detail = get(b'D');
            err.hint = get(b'H');
            return Err(Some(err));
        }
        Ok(outcome.status)
    }
}

/// The settings a startup packet asks for, as PostgreSQL would apply them:
/// every parameter but the reserved ones, then each `-c name=value` (or
/// `--name=value`) of `options`.
fn startup_settings(startup: &Startup) -> Result<Vec<(String, String)>, Refusal> {
    let mut out = Vec::new();
    for (name, value) in &startup.params {
        match name.as_str() {
            "user" | "database" | "replication" => {}
            "options" => parse_options(value, &mut out)?,
            n if n.starts_with("_pq_.") => {}
            _ => out.push((name.clone(), value.clone())),
        }
    }
    for (name, _) in &out {
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
        if !valid {
            return Err(Some(ClientError::fatal(
                SqlState::PROTOCOL_VIOLATION,
                format!("invalid startup parameter name \"{name}\""),
            )));
        }
    }
    Ok(out)
}

/// Splits libpq's `options` string: words separated by spaces, a backslash
/// escapes the next character.
fn parse_options(options: &str, out: &mut Vec<(String, String)>) -> Result<(), Refusal> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => word.extend(chars.next()),
            c if c.is_ascii_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let setting = if w == "-c" {
            it.next()
        } else {
            w.strip_prefix("--")
                .or_else(|| w.strip_prefix("-c"))
                .map(str::to_owned)
        };
        let pair = setting.as_deref().and_then(|s| s.split_once('='));
        match pair {
            Some((k, v)) => out.push((k.replace('-', "_"), v.to_owned())),
            None => {
                return Err(Some(ClientError::fatal(
                    SqlState::FEATURE_NOT_SUPPORTED,
                    format!(
                        "unsupported startup option \"{w}\": sqlgate accepts only -c name=value"
                    ),
                )))
            }
        }
    }
    Ok(())
}

/// A string literal that means `s` whatever `standard_conforming_strings`
/// is set to.
fn sql_literal(s: &str) -> String {
    if s.contains('\\') {
        format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_split_like_libpq() {
        let mut out = Vec::new();
        parse_options(
            r"-c search_path=a,b --statement-timeout=5s -csearch\ x=1",
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out,
            vec![
                ("search_path".into(), "a,b".into()),
                ("statement_timeout".into(), "5s".into()),
                ("search x".into(), "1".into()),
            ]
        );
        assert!(parse_options("-D /tmp", &mut Vec::new()).is_err());
    }

    #[test]
    fn literals_cannot_be_escaped() {
        assert_eq!(sql_literal("it's"), "'it''s'");
        assert_eq!(sql_literal(r"a\'b"), r"E'a\\''b'");
    }
}
