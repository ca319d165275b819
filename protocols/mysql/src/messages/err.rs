//! ERR packets the gateway itself sends. Errors from the server pass
//! through untouched.

/// An error the gateway raises: MySQL error code, SQLSTATE and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    /// The MySQL error number.
    pub code: u16,
    /// The five-character SQLSTATE.
    pub sqlstate: [u8; 5],
    /// The message.
    pub message: String,
}

impl ClientError {
    /// 1045 / 28000: access denied (wrong password or unknown user).
    pub fn access_denied(user: &str, host: &str) -> Self {
        Self::new(
            1045,
            b"28000",
            format!("Access denied for user '{user}'@'{host}' (using password: YES)"),
        )
    }

    /// An error with this code, state and message.
    pub fn new(code: u16, sqlstate: &[u8; 5], message: impl Into<String>) -> Self {
        ClientError {
            code,
            sqlstate: *sqlstate,
            message: message.into(),
        }
    }

    /// The ERR packet payload (with CLIENT_PROTOCOL_41).
    pub fn payload(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(9 + self.message.len());
        p.push(0xff);
        p.extend_from_slice(&self.code.to_le_bytes());
        p.push(b'#');
        p.extend_from_slice(&self.sqlstate);
        p.extend_from_slice(self.message.as_bytes());
        p
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.code,
            String::from_utf8_lossy(&self.sqlstate),
            self.message
        )
    }
}

/// The engine's refusal on this wire: masking refusals are about columns
/// (1142, as for a column the server refuses), the rest about commands
/// (1227, as for a missing privilege). MySQL has one message field: the
/// detail follows in parentheses, the hint after a colon.
impl From<sqlgate_net::verdict::Refusal> for ClientError {
    fn from(r: sqlgate_net::verdict::Refusal) -> Self {
        let mut text = r.reason;
        if !r.detail.is_empty() {
            text = format!("{text} ({})", r.detail);
        }
        if !r.hint.is_empty() {
            text.push_str(": ");
            text.push_str(&r.hint);
        }
        let code = match r.kind {
            sqlgate_net::verdict::RefusalKind::Masking => 1142,
            _ => 1227,
        };
        ClientError::new(code, b"42000", text)
    }
}

/// The code, SQLSTATE and message of an ERR payload from a server.
pub fn decode(payload: &[u8]) -> Option<(u16, String, String)> {
    if payload.first() != Some(&0xff) {
        return None;
    }
    let code = u16::from_le_bytes([*payload.get(1)?, *payload.get(2)?]);
    let rest = payload.get(3..)?;
    let (state, msg) = match rest.first() {
        Some(b'#') => (rest.get(1..6)?, rest.get(6..)?),
        _ => (&b"HY000"[..], rest),
    };
    Some((
        code,
        String::from_utf8_lossy(state).into_owned(),
        String::from_utf8_lossy(msg).into_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let e = ClientError::new(1049, b"42000", "Unknown database 'x'");
        assert_eq!(
            decode(&e.payload()),
            Some((1049, "42000".into(), "Unknown database 'x'".into()))
        );
        assert_eq!(decode(&[0xff, 1]), None);
    }
}
