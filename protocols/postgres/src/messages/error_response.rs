//! Errors the gateway itself raises towards a client. Errors from the
//! server are never rebuilt: they pass through byte for byte.

use bytes::BytesMut;
use pgwire::messages::response::{ErrorResponse, NoticeResponse};

/// A five-character SQLSTATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlState(pub [u8; 5]);

impl SqlState {
    /// A SQLSTATE received from a server: five ASCII letters or digits.
    pub fn parse(code: &str) -> Option<SqlState> {
        let bytes: [u8; 5] = code.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(u8::is_ascii_alphanumeric)
            .then_some(SqlState(bytes))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Built only from ASCII (constants and `parse`).
        std::str::from_utf8(&self.0).unwrap_or("XX000")
    }

    /// 08P01: the peer broke the protocol.
    pub const PROTOCOL_VIOLATION: SqlState = SqlState(*b"08P01");
    /// 08001: the gateway could not open a server connection.
    pub const CANNOT_CONNECT: SqlState = SqlState(*b"08001");
    /// 08006: the server connection broke.
    pub const CONNECTION_FAILURE: SqlState = SqlState(*b"08006");
    /// 0A000: feature not supported.
    pub const FEATURE_NOT_SUPPORTED: SqlState = SqlState(*b"0A000");
    /// 22021: bytes that are not valid in the encoding.
    pub const CHARACTER_NOT_IN_REPERTOIRE: SqlState = SqlState(*b"22021");
    /// 28000: invalid authorization specification.
    pub const INVALID_AUTHORIZATION: SqlState = SqlState(*b"28000");
    /// 28P01: wrong password.
    pub const INVALID_PASSWORD: SqlState = SqlState(*b"28P01");
    /// 3D000: no such database (target).
    pub const INVALID_CATALOG_NAME: SqlState = SqlState(*b"3D000");
    /// 42501: insufficient privilege.
    pub const INSUFFICIENT_PRIVILEGE: SqlState = SqlState(*b"42501");
    /// 53300: too many connections (pool exhausted).
    pub const TOO_MANY_CONNECTIONS: SqlState = SqlState(*b"53300");
    /// 54000: program limit exceeded (message too long).
    pub const PROGRAM_LIMIT_EXCEEDED: SqlState = SqlState(*b"54000");
    /// 57P01: the gateway is shutting down.
    pub const ADMIN_SHUTDOWN: SqlState = SqlState(*b"57P01");
}

/// How bad an error is: an ERROR leaves the session usable, a FATAL
/// closes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The statement failed; the session continues.
    Error,
    /// The connection is closed after this message.
    Fatal,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
        }
    }
}

/// An error the gateway raises, with the fields clients show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    /// ERROR or FATAL.
    pub severity: Severity,
    /// The SQLSTATE.
    pub code: SqlState,
    /// The primary message.
    pub message: String,
    /// An optional detail line.
    pub detail: Option<String>,
    /// An optional hint: what to do about it.
    pub hint: Option<String>,
    /// 1-based character position in the statement text it is about.
    pub position: Option<usize>,
}

impl ClientError {
    /// A FATAL error: the connection closes after it.
    pub fn fatal(code: SqlState, message: impl Into<String>) -> Self {
        ClientError {
            severity: Severity::Fatal,
            code,
            message: message.into(),
            detail: None,
            hint: None,
            position: None,
        }
    }

    /// An ERROR: the session stays usable.
    pub fn error(code: SqlState, message: impl Into<String>) -> Self {
        ClientError {
            severity: Severity::Error,
            ..ClientError::fatal(code, message)
        }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds the position in the statement text (1-based characters).
    pub fn with_position(mut self, position: usize) -> Self {
        self.position = Some(position);
        self
    }

    /// Appends the ErrorResponse message.
    pub fn encode(&self, buf: &mut BytesMut) {
        let sev = self.severity.as_str().to_owned();
        let mut fields = vec![
            (b'S', sev.clone()),
            (b'V', sev),
            (b'C', self.code.as_str().to_owned()),
            (b'M', self.message.clone()),
        ];
        if let Some(d) = &self.detail {
            fields.push((b'D', d.clone()));
        }
        if let Some(h) = &self.hint {
            fields.push((b'H', h.clone()));
        }
        if let Some(p) = self.position {
            fields.push((b'P', p.to_string()));
        }
        super::encode(&ErrorResponse::new(fields), buf);
    }
}

/// A notice the gateway itself sends (a statement held for approval):
/// clients show it as it arrives and go on waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientNotice {
    /// The primary message.
    pub message: String,
    /// An optional detail line.
    pub detail: Option<String>,
    /// An optional hint.
    pub hint: Option<String>,
}

impl ClientNotice {
    /// Appends the NoticeResponse message (severity NOTICE, 00000).
    pub fn encode(&self, buf: &mut BytesMut) {
        let mut fields = vec![
            (b'S', "NOTICE".to_owned()),
            (b'V', "NOTICE".to_owned()),
            (b'C', "00000".to_owned()),
            (b'M', self.message.clone()),
        ];
        if let Some(d) = &self.detail {
            fields.push((b'D', d.clone()));
        }
        if let Some(h) = &self.hint {
            fields.push((b'H', h.clone()));
        }
        super::encode(&NoticeResponse::new(fields), buf);
    }
}

/// The engine's refusal on this wire: an ERROR with SQLSTATE 42501
/// (insufficient_privilege), as for a privilege the server refuses, so
/// that drivers and tools report it as they would the server's own.
impl From<sqlgate_net::verdict::Refusal> for ClientError {
    fn from(r: sqlgate_net::verdict::Refusal) -> Self {
        let mut e = ClientError::error(SqlState::INSUFFICIENT_PRIVILEGE, r.reason);
        if !r.detail.is_empty() {
            e = e.with_detail(r.detail);
        }
        if !r.hint.is_empty() {
            e = e.with_hint(r.hint);
        }
        if r.position > 0 {
            e = e.with_position(r.position);
        }
        e
    }
}

/// The engine's notice of a held statement on this wire.
impl From<sqlgate_net::verdict::Notice> for ClientNotice {
    fn from(n: sqlgate_net::verdict::Notice) -> Self {
        ClientNotice {
            message: n.message,
            detail: Some(n.detail),
            hint: None,
        }
    }
}

/// The primary message ('M' field) of an ErrorResponse body.
pub fn message_field(body: &[u8]) -> Option<&[u8]> {
    field(body, b'M')
}

/// A field of an ErrorResponse or NoticeResponse body (`C`: SQLSTATE,
/// `M`: message, ...).
pub fn field(body: &[u8], which: u8) -> Option<&[u8]> {
    let mut c = super::cursor::Cursor::new(body);
    loop {
        let code = c.u8()?;
        if code == 0 {
            return None;
        }
        let value = c.cstr()?;
        if code == which {
            return Some(value);
        }
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_fields_in_order() {
        let mut buf = BytesMut::new();
        ClientError::fatal(SqlState::INVALID_PASSWORD, "nope")
            .with_hint("try again")
            .encode(&mut buf);
        assert_eq!(buf[0], b'E');
        let body = &buf[5..];
        assert_eq!(body, &b"SFATAL\0VFATAL\0C28P01\0Mnope\0Htry again\0\0"[..]);
    }
}
