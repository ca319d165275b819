//! Connections from the gateway to a MySQL or MariaDB server with the
//! gateway's own credentials: mysql_native_password, caching_sha2_password
//! (fast path, and full authentication over TLS or with the server's RSA
//! key), and the auth-switch requests servers send. Nothing the server says
//! during this login reaches a client.

use std::sync::Arc;
use std::time::Duration;

use mysql_common::auth::plugins::caching_sha2_password::scramble_sha256;
use mysql_common::auth::plugins::mysql_native_password::scramble_native;
use mysql_common::constants::CapabilityFlags;
use mysql_common::io::ParseBuf;
use mysql_common::packets::{AuthPlugin, HandshakePacket, HandshakeResponse};
use mysql_common::proto::{MyDeserialize, MySerialize};
use rustls::pki_types::ServerName;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::error::ProtocolError;
use crate::messages::command;
use crate::messages::err::{self, ClientError};
use crate::packet::{self, PacketReader};
use crate::stream::Stream;

/// Largest packet the gateway reads during login and resets.
const MAX_CONTROL_PACKET: usize = 1 << 20;

/// Where and as whom the gateway connects for one target.
#[derive(Clone)]
pub struct BackendConfig {
    /// The target's name (for errors and logs).
    pub target: String,
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Default schema on the server.
    pub database: String,
    /// Server-side user; never shown to clients.
    pub user: String,
    /// Server-side password (prints redacted).
    pub password: Option<sqlgate_net::secret::Secret>,
    /// TLS to the server.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Limit for connect + TLS + login.
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for BackendConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendConfig")
            .field("target", &self.target)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("password", &self.password)
            .finish()
    }
}

/// What a client session needs the server connection to agree on: the
/// capability flags that change the shape of packets, and the collation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnKey {
    /// Capability flags (only [`SESSION_CAPS`] bits).
    pub caps: u32,
    /// Connection collation id.
    pub collation: u8,
}

/// Capability bits a session's client chooses and its server connection
/// must mirror, because they change what the server sends.
pub const SESSION_CAPS: u32 = CapabilityFlags::CLIENT_FOUND_ROWS.bits()
    | CapabilityFlags::CLIENT_LONG_FLAG.bits()
    | CapabilityFlags::CLIENT_NO_SCHEMA.bits()
    | CapabilityFlags::CLIENT_IGNORE_SPACE.bits()
    | CapabilityFlags::CLIENT_INTERACTIVE.bits()
    | CapabilityFlags::CLIENT_MULTI_STATEMENTS.bits()
    | CapabilityFlags::CLIENT_MULTI_RESULTS.bits()
    | CapabilityFlags::CLIENT_PS_MULTI_RESULTS.bits()
    | CapabilityFlags::CLIENT_SESSION_TRACK.bits()
    | CapabilityFlags::CLIENT_DEPRECATE_EOF.bits()
    | CapabilityFlags::CLIENT_LOCAL_FILES.bits();

/// Capability bits the gateway always uses towards a server.
const BASE_CAPS: u32 = CapabilityFlags::CLIENT_LONG_PASSWORD.bits()
    | CapabilityFlags::CLIENT_PROTOCOL_41.bits()
    | CapabilityFlags::CLIENT_TRANSACTIONS.bits()
    | CapabilityFlags::CLIENT_SECURE_CONNECTION.bits()
    | CapabilityFlags::CLIENT_PLUGIN_AUTH.bits()
    | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA.bits()
    | CapabilityFlags::CLIENT_CONNECT_WITH_DB.bits();

/// What a server announced in its greeting.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// Version string, e.g. `10.11.19-MariaDB-0+deb12u1`.
    pub version: Vec<u8>,
    /// Its capability flags.
    pub caps: u32,
    /// Its default collation.
    pub collation: u8,
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
    /// Too slow.
    #[error("timed out after {0:?} connecting to the server")]
    Timeout(Duration),
    /// The server cannot do TLS but the target requires it.
    #[error("the server does not offer TLS")]
    TlsRefused,
    /// TLS handshake failed.
    #[error("TLS handshake with the server failed: {0}")]
    Tls(std::io::Error),
    /// The server refused the login or a command (logs only: the message
    /// may name the server-side user).
    #[error("the server refused: {code} {message}")]
    Refused {
        /// MySQL error number.
        code: u16,
        /// The server's message.
        message: String,
    },
    /// An auth method the gateway does not speak.
    #[error("unsupported authentication plugin {0}")]
    UnsupportedAuth(String),
    /// The server's RSA key could not be used.
    #[error("RSA key exchange failed")]
    Rsa,
    /// The connection broke or the server broke the protocol.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

impl From<std::io::Error> for BackendError {
    fn from(e: std::io::Error) -> Self {
        BackendError::Protocol(ProtocolError::Io(e))
    }
}

impl BackendError {
    /// The error a client gets when its session gets no server connection:
    /// the target and the kind of failure, never the server-side user.
    pub fn client_error(&self, target: &str) -> ClientError {
        let why = match self {
            BackendError::Connect { source, .. } => {
                format!("the server is not reachable ({})", source.kind())
            }
            BackendError::Timeout(d) => format!("the server did not answer within {d:?}"),
            BackendError::Refused { code, .. } => {
                format!("the server refused the gateway's connection (error {code})")
            }
            BackendError::TlsRefused | BackendError::Tls(_) => "TLS with the server failed".into(),
            _ => "the gateway could not log in to the server".into(),
        };
        ClientError::new(
            2003,
            b"HY000",
            format!("target '{target}' is unavailable: {why}; the gateway log has the details"),
        )
    }
}

/// An open, authenticated server connection.
#[derive(Debug)]
pub struct BackendConn {
    pub(crate) stream: Stream,
    pub(crate) reader: PacketReader,
    /// The server's id for this connection (`CONNECTION_ID()`).
    pub thread_id: u32,
    /// The key it was opened with.
    pub key: ConnKey,
    /// Negotiated capability flags.
    pub caps: u32,
    /// The server's greeting.
    pub info: ServerInfo,
}

impl BackendConn {
    /// Opens and logs in within the configured timeout.
    pub async fn connect(cfg: &BackendConfig, key: ConnKey) -> Result<Self, BackendError> {
        tokio::time::timeout(cfg.connect_timeout, Self::connect_inner(cfg, key))
            .await
            .map_err(|_| BackendError::Timeout(cfg.connect_timeout))?
    }

    async fn connect_inner(cfg: &BackendConfig, key: ConnKey) -> Result<Self, BackendError> {
        let addr = format!("{}:{}", cfg.host, cfg.port);
        let tcp = TcpStream::connect((cfg.host.as_str(), cfg.port))
            .await
            .map_err(|source| BackendError::Connect { addr, source })?;
        tcp.set_nodelay(true)?;
        let mut stream = Stream {
            io: Box::new(tcp),
            tls: false,
        };
        let mut reader = PacketReader::default();
        let (seq, greeting) = read(&mut reader, &mut stream).await?;
        if greeting.first() == Some(&0xff) {
            return Err(refused(&greeting));
        }
        let hs = HandshakePacket::deserialize((), &mut ParseBuf(&greeting))
            .map_err(|_| ProtocolError::Malformed("server greeting"))?;
        let server_caps = hs.capabilities().bits();
        let mut nonce = hs.scramble_1_ref().to_vec();
        nonce.extend_from_slice(hs.scramble_2_ref().unwrap_or(&[]));
        nonce.truncate(20);
        let info = ServerInfo {
            version: hs.server_version_ref().to_vec(),
            caps: server_caps,
            collation: hs.default_collation(),
        };
        let mut caps = (BASE_CAPS | key.caps) & server_caps;
        let mut seq = seq.wrapping_add(1);
        if let Some(tls) = &cfg.tls {
            if server_caps & CapabilityFlags::CLIENT_SSL.bits() == 0 {
                return Err(BackendError::TlsRefused);
            }
            caps |= CapabilityFlags::CLIENT_SSL.bits();
            let mut req = Vec::with_capacity(32);
            req.extend_from_slice(&caps.to_le_bytes());
            req.extend_from_slice(&(16u32 << 20).to_le_bytes());
            req.push(key.collation);
            req.extend_from_slice(&[0; 23]);
            seq = packet::write(&mut stream.io, seq, &req).await?;
            let Stream { io, .. } = stream;
            // A fresh stream: nothing can be buffered between the SSL
            // request and the handshake (the server waits for it).
            let name = ServerName::try_from(cfg.host.clone())
                .map_err(|e| BackendError::Tls(std::io::Error::other(e)))?;
            let tls_stream = tokio_rustls::TlsConnector::from(tls.clone())
                .connect(name, io)
                .await
                .map_err(BackendError::Tls)?;
            stream = Stream {
                io: Box::new(tls_stream),
                tls: true,
            };
        }
        let password = cfg.password.as_ref().map_or("", |p| p.expose()).as_bytes();
        let plugin_name = hs
            .auth_plugin_name_ref()
            .unwrap_or(b"mysql_native_password")
            .to_vec();
        let (plugin, data) = scramble(&plugin_name, &nonce, password, stream.tls)?;
        let response = HandshakeResponse::new(
            Some(data.as_slice()),
            hs.server_version_parsed().unwrap_or((5, 7, 0)),
            Some(cfg.user.as_bytes()),
            Some(cfg.database.as_bytes()),
            Some(plugin),
            CapabilityFlags::from_bits_retain(caps),
            None,
            16 << 20,
        );
        let mut payload = Vec::new();
        response.serialize(&mut payload);
        // HandshakeResponse writes the collation it was built with; ours
        // is the client's, at byte 8.
        if let Some(c) = payload.get_mut(8) {
            *c = key.collation;
        }
        packet::write(&mut stream.io, seq, &payload).await?;
        let mut conn = BackendConn {
            stream,
            reader,
            thread_id: hs.connection_id(),
            key,
            caps,
            info,
        };
        conn.finish_login(password, nonce).await?;
        Ok(conn)
    }

    /// Reads the login's answers: OK, ERR, auth switch, more data.
    async fn finish_login(
        &mut self,
        password: &[u8],
        mut nonce: Vec<u8>,
    ) -> Result<(), BackendError> {
        loop {
            let (seq, p) = read(&mut self.reader, &mut self.stream).await?;
            let next = seq.wrapping_add(1);
            match p.first() {
                Some(0x00) => return Ok(()),
                Some(0xff) => return Err(refused(&p)),
                Some(0xfe) => {
                    // AuthSwitchRequest: plugin name NUL, new nonce (NUL-terminated).
                    let rest = &p[1..];
                    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
                    let plugin = rest[..end].to_vec();
                    nonce = rest.get(end + 1..).unwrap_or(&[]).to_vec();
                    if nonce.last() == Some(&0) {
                        nonce.pop();
                    }
                    let (_, data) = scramble(&plugin, &nonce, password, self.stream.tls)?;
                    packet::write(&mut self.stream.io, next, &data).await?;
                }
                Some(0x01) => match p.get(1) {
                    // caching_sha2_password: fast path succeeded, OK follows.
                    Some(0x03) => {}
                    // Full authentication: the password itself, over TLS or
                    // encrypted with the server's RSA key.
                    Some(0x04) => {
                        let mut clear = password.to_vec();
                        clear.push(0);
                        if self.stream.tls {
                            packet::write(&mut self.stream.io, next, &clear).await?;
                        } else {
                            packet::write(&mut self.stream.io, next, &[0x02]).await?;
                            let (seq, key) = read(&mut self.reader, &mut self.stream).await?;
                            let pem = key.get(1..).ok_or(BackendError::Rsa)?;
                            for (i, b) in clear.iter_mut().enumerate() {
                                *b ^= nonce.get(i % nonce.len().max(1)).copied().unwrap_or(0);
                            }
                            let sealed = mysql_common::crypto::encrypt(&clear, pem)
                                .map_err(|_| BackendError::Rsa)?;
                            packet::write(&mut self.stream.io, seq.wrapping_add(1), &sealed)
                                .await?;
                        }
                    }
                    _ => return Err(ProtocolError::Unexpected("auth more data").into()),
                },
                _ => return Err(ProtocolError::Unexpected("login answer").into()),
            }
        }
    }

    /// Sends one command and reads a one-packet answer (OK or ERR).
    pub async fn simple_command(&mut self, payload: &[u8]) -> Result<(), BackendError> {
        packet::write(&mut self.stream.io, 0, payload).await?;
        let (_, answer) = read(&mut self.reader, &mut self.stream).await?;
        match answer.first() {
            Some(0x00) | Some(0xfe) => Ok(()),
            Some(0xff) => Err(refused(&answer)),
            _ => Err(ProtocolError::Unexpected("answer to a reset command").into()),
        }
    }

    /// Makes the connection fit for another client: COM_RESET_CONNECTION
    /// (ends transactions, drops temporary tables, prepared statements,
    /// user variables, resets session variables) and back to the target's
    /// default schema.
    pub async fn reset(&mut self, database: &str) -> Result<(), BackendError> {
        self.simple_command(&[command::RESET_CONNECTION]).await?;
        // COM_RESET_CONNECTION keeps what COM_SET_OPTION set: the next
        // client must get multi-statements as its key says, not as the
        // last client left them.
        let multi = self.key.caps & CapabilityFlags::CLIENT_MULTI_STATEMENTS.bits() != 0;
        let option: u16 = if multi { 0 } else { 1 }; // MYSQL_OPTION_MULTI_STATEMENTS_ON/OFF
        let mut set = vec![command::SET_OPTION];
        set.extend_from_slice(&option.to_le_bytes());
        self.simple_command(&set).await?;
        let mut init = vec![command::INIT_DB];
        init.extend_from_slice(database.as_bytes());
        self.simple_command(&init).await
    }

    /// Runs one text query and returns its rows as text (for the gateway's
    /// own catalog reads).
    pub async fn query_rows(
        &mut self,
        sql: &str,
    ) -> Result<Vec<Vec<Option<String>>>, BackendError> {
        let mut payload = vec![command::QUERY];
        payload.extend_from_slice(sql.as_bytes());
        packet::write(&mut self.stream.io, 0, &payload).await?;
        let (_, first) = read(&mut self.reader, &mut self.stream).await?;
        let columns = match first.first() {
            Some(0x00) => return Ok(Vec::new()),
            Some(0xff) => return Err(refused(&first)),
            _ => {
                crate::messages::lenenc_int(&first)
                    .ok_or(ProtocolError::Malformed("column count"))?
                    .0
            }
        };
        for _ in 0..columns {
            read(&mut self.reader, &mut self.stream).await?;
        }
        if !self.deprecate_eof() {
            read(&mut self.reader, &mut self.stream).await?;
        }
        let mut rows = Vec::new();
        loop {
            let (_, p) = read(&mut self.reader, &mut self.stream).await?;
            match p.first() {
                Some(0xfe) if p.len() < 0xff_ffff => return Ok(rows),
                Some(0xff) => return Err(refused(&p)),
                _ => {}
            }
            let mut row = Vec::with_capacity(columns as usize);
            let mut at = 0;
            for _ in 0..columns {
                if p.get(at) == Some(&0xfb) {
                    row.push(None);
                    at += 1;
                    continue;
                }
                let (len, n) =
                    crate::messages::lenenc_int(&p[at..]).ok_or(ProtocolError::Malformed("row"))?;
                let start = at + n;
                let end = start
                    .checked_add(usize::try_from(len).map_err(|_| ProtocolError::Malformed("row"))?)
                    .filter(|&e| e <= p.len())
                    .ok_or(ProtocolError::Malformed("row"))?;
                row.push(Some(String::from_utf8_lossy(&p[start..end]).into_owned()));
                at = end;
            }
            rows.push(row);
        }
    }

    /// Makes the session read-only (until COM_RESET_CONNECTION): writes
    /// fail on the server even if a statement was misjudged.
    pub async fn set_read_only(&mut self) -> Result<(), BackendError> {
        let mut payload = vec![command::QUERY];
        payload.extend_from_slice(b"SET SESSION TRANSACTION READ ONLY");
        self.simple_command(&payload).await
    }

    /// False when the server closed the connection or sent something while
    /// idle: such a connection is dropped.
    pub fn is_alive(&mut self) -> bool {
        use futures_util::FutureExt;
        use tokio::io::AsyncReadExt;
        if !self.reader.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        self.stream.io.read(&mut probe).now_or_never().is_none()
    }

    /// Closes politely (COM_QUIT).
    pub async fn quit(mut self) {
        let _ = packet::write(&mut self.stream.io, 0, &[command::QUIT]).await;
        let _ = self.stream.io.shutdown().await;
    }

    /// Whether the session uses CLIENT_DEPRECATE_EOF.
    pub fn deprecate_eof(&self) -> bool {
        self.caps & CapabilityFlags::CLIENT_DEPRECATE_EOF.bits() != 0
    }
}

async fn read(
    reader: &mut PacketReader,
    stream: &mut Stream,
) -> Result<(u8, Vec<u8>), BackendError> {
    reader
        .read(&mut stream.io, MAX_CONTROL_PACKET)
        .await?
        .ok_or_else(|| ProtocolError::Truncated.into())
}

fn refused(payload: &[u8]) -> BackendError {
    let (code, _state, message) = err::decode(payload).unwrap_or((0, String::new(), String::new()));
    BackendError::Refused { code, message }
}

/// The auth data for a plugin: `(plugin for the response, data)`.
fn scramble(
    plugin: &[u8],
    nonce: &[u8],
    password: &[u8],
    tls: bool,
) -> Result<(AuthPlugin<'static>, Vec<u8>), BackendError> {
    match plugin {
        b"mysql_native_password" => Ok((
            AuthPlugin::MysqlNativePassword,
            if password.is_empty() {
                Vec::new()
            } else {
                scramble_native(nonce, password)
                    .map(|s| s.to_vec())
                    .unwrap_or_default()
            },
        )),
        b"caching_sha2_password" => {
            let nonce: [u8; 20] = nonce
                .get(..20)
                .and_then(|n| n.try_into().ok())
                .ok_or(ProtocolError::Malformed("auth nonce"))?;
            Ok((
                AuthPlugin::CachingSha2Password,
                scramble_sha256(&nonce, password)
                    .map(|s| s.to_vec())
                    .unwrap_or_default(),
            ))
        }
        b"mysql_clear_password" if tls => {
            let mut clear = password.to_vec();
            clear.push(0);
            Ok((AuthPlugin::MysqlClearPassword, clear))
        }
        other => Err(BackendError::UnsupportedAuth(
            String::from_utf8_lossy(other).into_owned(),
        )),
    }
}
