//! Connections from the gateway to a PostgreSQL server, authenticated with
//! the gateway's own credentials (trust, cleartext, md5, SCRAM-SHA-256),
//! optionally over TLS.
//!
//! Nothing the server says during authentication reaches a client: its
//! messages may name the server-side user. Errors here are mapped to
//! client-safe text by [`BackendError::client_error`].

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use futures_util::FutureExt;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use postgres_protocol::message::backend::{ErrorResponseBody, Message};
use postgres_protocol::message::frontend;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::ProtocolError;
use crate::messages::error_response::{ClientError, SqlState};
use crate::messages::{frontend_tag, TX_IDLE};
use crate::stream::{MaybeTls, ServerStream};
use sqlgate_net::secret::Secret;

/// Where and as whom the gateway connects for one target.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// The target's name (what clients see; used in errors and logs).
    pub target: String,
    /// Server host name or address.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Database on the server.
    pub database: String,
    /// Server-side user: never shown to clients.
    pub user: String,
    /// Server-side password, if the server asks for one.
    pub password: Option<Secret>,
    /// TLS to the server; `None` for plain TCP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Limit for TCP connect, TLS and authentication together.
    pub connect_timeout: Duration,
}

/// The server's cancel key for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendKey {
    /// Server process id.
    pub pid: i32,
    /// Server secret key.
    pub secret: i32,
}

/// What went wrong talking to a server.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// TCP connect failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// host:port.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The connect, TLS handshake and authentication took too long.
    #[error("timed out after {0:?} connecting to the server")]
    Timeout(Duration),
    /// The server does not accept TLS but the target requires it.
    #[error("the server refused TLS")]
    TlsRefused,
    /// The TLS handshake failed.
    #[error("TLS handshake with the server failed: {0}")]
    Tls(std::io::Error),
    /// The server refused the gateway's credentials or the connection.
    #[error("the server refused the connection: {sqlstate} {message}")]
    Refused {
        /// The server's SQLSTATE.
        sqlstate: String,
        /// The server's message (may name the server-side user: logs only).
        message: String,
    },
    /// The server asked for an authentication method we do not speak.
    #[error("the server asked for unsupported authentication: {0}")]
    UnsupportedAuth(&'static str),
    /// The server asked for a password and the target has none.
    #[error("the server asked for a password but the target has none configured")]
    NoPassword,
    /// SCRAM with the server failed (for example a bad server signature).
    #[error("SCRAM with the server failed: {0}")]
    Scram(std::io::Error),
    /// The connection broke or the server broke the protocol.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// A reset statement failed.
    #[error("reset failed: {0}")]
    Reset(String),
}

impl From<std::io::Error> for BackendError {
    fn from(e: std::io::Error) -> Self {
        BackendError::Protocol(ProtocolError::Io(e))
    }
}

impl BackendError {
    /// The FATAL error a client gets when its session cannot get a server
    /// connection. Names the target and the kind of failure, never the
    /// server-side user or password.
    pub fn client_error(&self, target: &str) -> ClientError {
        let (code, why) = match self {
            BackendError::Connect { source, .. } => (
                SqlState::CANNOT_CONNECT,
                format!("the server is not reachable ({})", source.kind()),
            ),
            BackendError::Timeout(d) => (
                SqlState::CANNOT_CONNECT,
                format!("the server did not answer within {d:?}"),
            ),
            BackendError::Refused { sqlstate, .. } if sqlstate.starts_with("28") => (
                SqlState::CANNOT_CONNECT,
                format!("the server refused the gateway's credentials (SQLSTATE {sqlstate})"),
            ),
            BackendError::Refused { sqlstate, .. } => (
                SqlState::CANNOT_CONNECT,
                format!("the server refused the connection (SQLSTATE {sqlstate})"),
            ),
            other => (SqlState::CANNOT_CONNECT, kind_text(other).to_owned()),
        };
        ClientError::fatal(code, format!("target \"{target}\" is unavailable: {why}"))
            .with_hint("the gateway log has the details; retry when the server is back")
    }
}

fn kind_text(e: &BackendError) -> &'static str {
    match e {
        BackendError::TlsRefused => "the server refused TLS",
        BackendError::Tls(_) => "the TLS handshake with the server failed",
        BackendError::UnsupportedAuth(_) | BackendError::NoPassword | BackendError::Scram(_) => {
            "the gateway could not authenticate to the server"
        }
        _ => "the server connection failed",
    }
}

/// Fields of a server ErrorResponse, as `(code byte, value)`.
pub type ErrorFields = Vec<(u8, String)>;

fn error_fields(body: &ErrorResponseBody) -> ErrorFields {
    body.fields()
        .map(|f| {
            Ok((
                f.type_(),
                String::from_utf8_lossy(f.value_bytes()).into_owned(),
            ))
        })
        .collect()
        .unwrap_or_default()
}

fn field(fields: &ErrorFields, code: u8) -> String {
    fields
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// An open, authenticated server connection.
#[derive(Debug)]
pub struct BackendConn {
    pub(crate) stream: ServerStream,
    /// Bytes read from the server and not yet handled; the relay starts
    /// from these.
    pub(crate) rbuf: BytesMut,
    wbuf: BytesMut,
    /// ParameterStatus values as last reported by the server.
    pub(crate) params: Vec<(String, String)>,
    key: Option<BackendKey>,
}

/// How a simple query the gateway ran itself ended.
#[derive(Debug)]
pub struct QueryOutcome {
    /// The first ErrorResponse, if any.
    pub error: Option<ErrorFields>,
    /// Transaction status after it.
    pub status: u8,
}

impl BackendConn {
    /// Opens and authenticates a connection within the configured timeout.
    pub async fn connect(cfg: &BackendConfig) -> Result<Self, BackendError> {
        tokio::time::timeout(cfg.connect_timeout, Self::connect_inner(cfg))
            .await
            .map_err(|_| BackendError::Timeout(cfg.connect_timeout))?
    }

    async fn connect_inner(cfg: &BackendConfig) -> Result<Self, BackendError> {
        let stream = open_stream(cfg).await?;
        let mut conn = BackendConn {
            stream,
            rbuf: BytesMut::with_capacity(16 * 1024),
            wbuf: BytesMut::with_capacity(1024),
            params: Vec::new(),
            key: None,
        };
        frontend::startup_message(
            [
                ("user", cfg.user.as_str()),
                ("database", cfg.database.as_str()),
            ],
            &mut conn.wbuf,
        )?;
        conn.flush().await?;
        conn.authenticate(cfg).await?;
        loop {
            match conn.read_message().await? {
                Message::ParameterStatus(p) => {
                    let (name, value) = (p.name()?.to_owned(), p.value()?.to_owned());
                    conn.set_param(name, value);
                }
                Message::BackendKeyData(k) => {
                    conn.key = Some(BackendKey {
                        pid: k.process_id(),
                        secret: k.secret_key(),
                    })
                }
                Message::ReadyForQuery(_) => break,
                Message::ErrorResponse(e) => return Err(refused(&error_fields(&e))),
                _ => {}
            }
        }
        Ok(conn)
    }

    async fn authenticate(&mut self, cfg: &BackendConfig) -> Result<(), BackendError> {
        let password = || {
            cfg.password
                .as_ref()
                .map(|p| p.expose().as_bytes())
                .ok_or(BackendError::NoPassword)
        };
        loop {
            match self.read_message().await? {
                Message::AuthenticationOk => return Ok(()),
                Message::AuthenticationCleartextPassword => {
                    if !self.stream.is_tls() {
                        tracing::warn!(target_name = %cfg.target, "server asks for a cleartext password over an unencrypted connection");
                    }
                    frontend::password_message(password()?, &mut self.wbuf)?;
                }
                Message::AuthenticationMd5Password(body) => {
                    let hash = md5_hash(cfg.user.as_bytes(), password()?, body.salt());
                    frontend::password_message(hash.as_bytes(), &mut self.wbuf)?;
                }
                Message::AuthenticationSasl(body) => {
                    let mut mechanisms = body.mechanisms();
                    let mut scram = false;
                    while let Some(m) = mechanisms.next()? {
                        scram |= m == SCRAM_SHA_256;
                    }
                    if !scram {
                        return Err(BackendError::UnsupportedAuth("SASL without SCRAM-SHA-256"));
                    }
                    self.scram(password()?).await?;
                }
                Message::ErrorResponse(e) => return Err(refused(&error_fields(&e))),
                Message::AuthenticationGss
                | Message::AuthenticationSspi
                | Message::AuthenticationGssContinue(_) => {
                    return Err(BackendError::UnsupportedAuth("GSSAPI/SSPI"))
                }
                _ => return Err(BackendError::UnsupportedAuth("unknown method")),
            }
            self.flush().await?;
        }
    }

    async fn scram(&mut self, password: &[u8]) -> Result<(), BackendError> {
        let mut scram = ScramSha256::new(password, ChannelBinding::unsupported());
        frontend::sasl_initial_response(SCRAM_SHA_256, scram.message(), &mut self.wbuf)?;
        self.flush().await?;
        match self.read_message().await? {
            Message::AuthenticationSaslContinue(body) => {
                scram.update(body.data()).map_err(BackendError::Scram)?
            }
            Message::ErrorResponse(e) => return Err(refused(&error_fields(&e))),
            _ => return Err(ProtocolError::malformed("SCRAM exchange").into()),
        }
        frontend::sasl_response(scram.message(), &mut self.wbuf)?;
        self.flush().await?;
        match self.read_message().await? {
            Message::AuthenticationSaslFinal(body) => {
                scram.finish(body.data()).map_err(BackendError::Scram)
            }
            Message::ErrorResponse(e) => Err(refused(&error_fields(&e))),
            _ => Err(ProtocolError::malformed("SCRAM exchange").into()),
        }
    }

    async fn flush(&mut self) -> Result<(), BackendError> {
        self.stream.write_all(&self.wbuf).await?;
        self.stream.flush().await?;
        self.wbuf.clear();
        Ok(())
    }

    async fn read_message(&mut self) -> Result<Message, BackendError> {
        loop {
            if let Some(msg) = Message::parse(&mut self.rbuf)? {
                return Ok(msg);
            }
            if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                return Err(ProtocolError::Truncated.into());
            }
        }
    }

    fn set_param(&mut self, name: String, value: String) {
        set_param(&mut self.params, name, value);
    }

    /// The server's cancel key.
    pub fn key(&self) -> Option<&BackendKey> {
        self.key.as_ref()
    }

    /// ParameterStatus values as last reported by the server.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// Runs one simple query and reads its results up to ReadyForQuery,
    /// keeping ParameterStatus changes and the first error.
    pub async fn simple_query(&mut self, sql: &str) -> Result<QueryOutcome, BackendError> {
        frontend::query(sql, &mut self.wbuf)?;
        self.flush().await?;
        self.read_until_ready().await
    }

    /// Runs one simple query and returns its rows as text (for the
    /// gateway's own catalog reads), with the outcome.
    pub async fn query_rows(
        &mut self,
        sql: &str,
    ) -> Result<(Vec<Vec<Option<String>>>, QueryOutcome), BackendError> {
        frontend::query(sql, &mut self.wbuf)?;
        self.flush().await?;
        let mut rows = Vec::new();
        let outcome = self.read_until_ready_with(&mut rows).await?;
        Ok((rows, outcome))
    }

    /// Runs exactly one statement through the extended protocol (a Parse
    /// holds one statement: nothing a text could carry after it runs),
    /// its rows as text. For the gateway's own questions about a
    /// client's statement (its planner estimate).
    pub async fn query_one_statement(
        &mut self,
        sql: &str,
    ) -> Result<(Vec<Vec<Option<String>>>, QueryOutcome), BackendError> {
        frontend::parse("", sql, std::iter::empty(), &mut self.wbuf)?;
        // Bind: unnamed portal and statement, no formats, no values, text
        // results.
        self.wbuf
            .extend_from_slice(&[b'B', 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0]);
        frontend::execute("", 0, &mut self.wbuf)?;
        frontend::sync(&mut self.wbuf);
        self.flush().await?;
        let mut rows = Vec::new();
        let outcome = self.read_until_ready_with(&mut rows).await?;
        Ok((rows, outcome))
    }

    async fn read_until_ready(&mut self) -> Result<QueryOutcome, BackendError> {
        self.read_until_ready_with(&mut Vec::new()).await
    }

    async fn read_until_ready_with(
        &mut self,
        rows: &mut Vec<Vec<Option<String>>>,
    ) -> Result<QueryOutcome, BackendError> {
        let mut error = None;
        loop {
            match self.read_message().await? {
                Message::DataRow(r) => {
                    use fallible_iterator::FallibleIterator;
                    let buf = r.buffer();
                    let row: Vec<Option<String>> =
                        r.ranges()
                            .map(|range| {
                                Ok(range
                                    .map(|range| String::from_utf8_lossy(&buf[range]).into_owned()))
                            })
                            .collect()?;
                    rows.push(row);
                }
                Message::ParameterStatus(p) => {
                    let (name, value) = (p.name()?.to_owned(), p.value()?.to_owned());
                    self.set_param(name, value);
                }
                Message::ErrorResponse(e) => {
                    error.get_or_insert_with(|| error_fields(&e));
                }
                Message::ReadyForQuery(r) => {
                    return Ok(QueryOutcome {
                        error,
                        status: r.status(),
                    })
                }
                _ => {}
            }
        }
    }

    /// Makes the connection fit for another client: ends an unsynced
    /// extended-protocol exchange, rolls back an open transaction, and runs
    /// `DISCARD ALL` (which also closes prepared statements, portals,
    /// temp tables and LISTENs, and resets every setting).
    pub async fn reset(&mut self, status: u8, unsynced: bool) -> Result<(), BackendError> {
        let mut status = status;
        if unsynced {
            self.wbuf
                .extend_from_slice(&[frontend_tag::SYNC, 0, 0, 0, 4]);
            self.flush().await?;
            status = self.read_until_ready().await?.status;
        }
        if status != TX_IDLE {
            let out = self.simple_query("ROLLBACK").await?;
            if let Some(e) = out.error {
                return Err(BackendError::Reset(field(&e, b'M')));
            }
        }
        let out = self.simple_query("DISCARD ALL").await?;
        match out.error {
            Some(e) => Err(BackendError::Reset(field(&e, b'M'))),
            None if out.status != TX_IDLE => Err(BackendError::Reset("not idle".into())),
            None => Ok(()),
        }
    }

    /// False when the server closed the connection or sent something while
    /// it sat idle (such as a FATAL on shutdown): such a connection is
    /// dropped, never handed out.
    pub fn is_alive(&mut self) -> bool {
        if !self.rbuf.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        self.stream.read(&mut probe).now_or_never().is_none()
    }
}

/// Records a ParameterStatus value.
pub(crate) fn set_param(params: &mut Vec<(String, String)>, name: String, value: String) {
    match params.iter_mut().find(|(n, _)| *n == name) {
        Some(slot) => slot.1 = value,
        None => params.push((name, value)),
    }
}

fn refused(fields: &ErrorFields) -> BackendError {
    BackendError::Refused {
        sqlstate: field(fields, b'C'),
        message: field(fields, b'M'),
    }
}

async fn open_stream(cfg: &BackendConfig) -> Result<ServerStream, BackendError> {
    let addr = format!("{}:{}", cfg.host, cfg.port);
    let tcp = TcpStream::connect((cfg.host.as_str(), cfg.port))
        .await
        .map_err(|source| BackendError::Connect {
            addr: addr.clone(),
            source,
        })?;
    tcp.set_nodelay(true)?;
    let Some(tls) = &cfg.tls else {
        return Ok(MaybeTls::Plain(tcp));
    };
    let mut tcp = tcp;
    let mut req = BytesMut::new();
    frontend::ssl_request(&mut req);
    tcp.write_all(&req).await?;
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer).await?;
    match answer[0] {
        b'S' => {}
        b'N' => return Err(BackendError::TlsRefused),
        _ => return Err(ProtocolError::malformed("SSLRequest answer").into()),
    }
    let name = ServerName::try_from(cfg.host.clone())
        .map_err(|e| BackendError::Tls(std::io::Error::other(e)))?;
    let stream = tokio_rustls::TlsConnector::from(tls.clone())
        .connect(name, tcp)
        .await
        .map_err(BackendError::Tls)?;
    Ok(MaybeTls::Tls(Box::new(stream)))
}

/// Sends a CancelRequest for `key` to the target's server.
pub async fn cancel(cfg: &BackendConfig, key: &BackendKey) -> Result<(), BackendError> {
    let mut stream = tokio::time::timeout(cfg.connect_timeout, open_stream(cfg))
        .await
        .map_err(|_| BackendError::Timeout(cfg.connect_timeout))??;
    let mut buf = BytesMut::new();
    frontend::cancel_request(key.pid, key.secret, &mut buf);
    stream.write_all(&buf).await?;
    stream.flush().await?;
    // The server closes the connection once it has the request.
    let mut sink = [0u8; 64];
    let _ = tokio::time::timeout(cfg.connect_timeout, stream.read(&mut sink)).await;
    Ok(())
}
