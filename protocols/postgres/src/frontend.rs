//! One client connection from its first byte to its end: TLS negotiation,
//! the startup packet, authentication against the gateway's own users,
//! routing to a target, a server connection from the pool, the greeting,
//! the relay, and the release of the server connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use pgwire::messages::startup::{BackendKeyData, NegotiateProtocolVersion, SecretKey};
use rand::RngCore;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::cancel::{CancelRegistry, SessionId};
use crate::error::ProtocolError;
use crate::frame::FrameReader;
use crate::hooks::{
    AuthMethod, Hooks, Identity, SessionEnd, SessionHooks, SessionInfo, StatementOrigin, UserAuth,
};
use crate::messages::error_response::{ClientError, SqlState};
use crate::messages::startup::{self, Startup, StartupPacket};
use crate::messages::{self, auth, frontend_tag, parameter_status};
use crate::pool::{self, Lease};
use crate::relay::{self, RelayEnd, RelayLimits};
use crate::scram::{ScramError, ScramSecret};
use crate::stream::{ClientStream, MaybeTls};

/// Logs a session's start: who, how they logged in, where to.
fn log_start(info: &SessionInfo, tls: bool) {
    let peer = info.peer;
    match &info.identity.login {
        sqlgate_net::identity::Login::Password => {
            tracing::info!(session = %info.id, user = %info.user, target_name = %info.target, %peer, tls, login = "password", "session started");
        }
        sqlgate_net::identity::Login::Token(t) => {
            tracing::info!(session = %info.id, user = ?info.user, groups = ?info.identity.groups, target_name = %info.target, %peer, tls, login = "oidc", provider = %t.provider, issuer = ?t.issuer, subject = ?t.subject, matched = ?t.matched, "session started");
        }
    }
}

/// Longest message accepted during authentication (tokens of several KB
/// arrive as passwords).
const MAX_AUTH_MESSAGE: usize = 64 * 1024;
/// First byte of a TLS ClientHello: a client doing direct TLS (libpq 17
/// `sslnegotiation=direct`) instead of sending SSLRequest first.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Settings of a PostgreSQL listener.
#[derive(Debug, Clone)]
pub struct FrontendConfig {
    /// TLS for clients; `None` answers SSLRequest with `N`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Refuse clients that do not use TLS.
    pub require_tls: bool,
    /// Time a client has from connecting to being authenticated.
    pub handshake_timeout: Duration,
    /// Relay limits.
    pub limits: RelayLimits,
    /// The open sessions an operator may list and end.
    pub live: Arc<sqlgate_net::live::LiveSessions>,
}

/// Everything the sessions of one listener share.
pub struct Gateway {
    hooks: Arc<dyn Hooks>,
    config: FrontendConfig,
    cancels: CancelRegistry,
    next_id: AtomicU32,
    /// Key for the salts of the fake SCRAM exchange of unknown users.
    mock_key: [u8; 32],
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("config", &self.config)
            .finish()
    }
}

/// A refusal during the handshake: sent as FATAL, then the connection
/// closes. `None` means the client simply went away.
type Refusal = Option<ClientError>;

impl Gateway {
    /// A gateway with these hooks and settings.
    pub fn new(hooks: Arc<dyn Hooks>, config: FrontendConfig) -> Arc<Self> {
        let mut mock_key = [0u8; 32];
        rand::rng().fill_bytes(&mut mock_key);
        Arc::new(Gateway {
            hooks,
            config,
            cancels: CancelRegistry::default(),
            next_id: AtomicU32::new(1),
            mock_key,
        })
    }

    fn session_id(&self) -> SessionId {
        loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed) & 0x7fff_ffff;
            if id != 0 {
                return SessionId(id);
            }
        }
    }

    /// Serves one client connection to its end.
    pub async fn handle(
        self: Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
        shutdown: CancellationToken,
    ) {
        let _ = tcp.set_nodelay(true);
        let mut reader = FrameReader::new(MAX_AUTH_MESSAGE);
        let handshake = tokio::time::timeout(
            self.config.handshake_timeout,
            self.handshake(tcp, &mut reader),
        )
        .await;
        let (mut client, startup) = match handshake {
            Ok(Ok(Some(ok))) => ok,
            Ok(Ok(None)) => return,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "client handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "client handshake timed out");
                return;
            }
        };
        let tls = client.is_tls();
        let auth = tokio::time::timeout(
            self.config.handshake_timeout,
            self.authenticate(&mut client, &mut reader, &startup),
        )
        .await
        .unwrap_or_else(|_| {
            Err(Some(ClientError::fatal(
                SqlState::INVALID_AUTHORIZATION,
                "authentication timed out",
            )))
        });
        let (identity, database) = match auth {
            Ok(ok) => ok,
            Err(refusal) => return refuse(&mut client, refusal, peer).await,
        };
        let session = match self.hooks.route(&identity, &database) {
            Ok(route) => {
                let info = SessionInfo {
                    id: self.session_id(),
                    user: identity.user.clone(),
                    identity,
                    target: route.target,
                    peer,
                    tls,
                };
                (info, route.pool)
            }
            Err(e) => return refuse(&mut client, Some(e), peer).await,
        };
        let (info, pool) = session;
        let mut lease = match pool.acquire_for((), &info.user).await {
            Ok(lease) => lease,
            Err(e) => {
                tracing::warn!(session = %info.id, user = %info.user, target_name = %info.target, error = %e, "no server connection");
                return refuse(
                    &mut client,
                    Some(pool::client_error(&e, &info.target)),
                    peer,
                )
                .await;
            }
        };
        log_start(&info, tls);
        let mut judge = self.hooks.session(&info);
        let status = match self
            .apply_startup_params(&mut lease, &info, judge.as_mut(), &startup)
            .await
        {
            Ok(status) => status,
            Err(refusal) => {
                refuse(&mut client, refusal, peer).await;
                pool::release(lease, messages::TX_IDLE, false).await;
                return;
            }
        };
        let mut secret = [0u8; 4];
        rand::rng().fill_bytes(&mut secret);
        // The server connection's own pid (what pg_backend_pid() and
        // notifications say); the session id where the server gave none.
        let pid = lease.conn().key().map_or(info.id.0 as i32, |k| k.pid);
        if let Err(e) = greet(&mut client, &lease, &info, pid, secret, status).await {
            tracing::debug!(session = %info.id, error = %e, "client left before the greeting");
            pool::release(lease, status, false).await;
            return;
        }
        let held = Arc::new(tokio::sync::Notify::new());
        if let Some(key) = lease.conn().key().cloned() {
            self.cancels.register(
                info.id,
                pid,
                secret,
                lease.pool().clone(),
                key,
                held.clone(),
            );
        }
        let application = startup
            .params
            .iter()
            .find(|(k, _)| k == "application_name")
            .map(|(_, v)| v.as_str());
        judge.connected(lease.conn().key().map_or(0, |k| k.pid as u32), application);
        let mut client_buf = reader.take_buffered();
        let live = self.config.live.register(
            sqlgate_net::live::LiveSession {
                id: info.id.0.into(),
                protocol: "postgres",
                user: info.user.clone(),
                target: info.target.clone(),
                client: peer.to_string(),
                started: 0,
            },
            &shutdown,
        );
        let ending = sqlgate_net::identity::ExpiringEnd::new(&info.identity, &live.end);
        let outcome = relay::run(
            &mut client,
            &mut client_buf,
            lease.conn(),
            &info.user,
            judge.as_mut(),
            self.config.limits,
            relay::Signals {
                shutdown: &ending.end,
                cancel: held,
            },
        )
        .await;
        drop(live);
        // The session's own end, not the gateway's: its token expired, or
        // an operator ended it.
        let own_end = matches!(outcome.end, RelayEnd::Shutdown) && !shutdown.is_cancelled();
        let expired = own_end && ending.expired();
        let by_operator = own_end && !expired;
        drop(ending);
        self.cancels.unregister(info.id);
        judge.ended(match &outcome.end {
            RelayEnd::ClientGone => SessionEnd::ClientLeft,
            RelayEnd::ClientError(_) => SessionEnd::ClientProtocolError,
            RelayEnd::Limit(_) => SessionEnd::Limit,
            RelayEnd::Desync(_) => SessionEnd::Desync,
            RelayEnd::ServerGone | RelayEnd::ServerError(_) => SessionEnd::ServerLost,
            RelayEnd::Shutdown if expired => SessionEnd::TokenExpired,
            RelayEnd::Shutdown if by_operator => SessionEnd::ByOperator,
            RelayEnd::Shutdown => SessionEnd::GatewayShutdown,
            RelayEnd::Refused(_) => SessionEnd::NotRecorded,
        });
        let closing = match &outcome.end {
            RelayEnd::ClientGone => None,
            RelayEnd::ClientError(e) => {
                tracing::warn!(session = %info.id, error = %e, "client connection closed on a protocol error");
                Some(ClientError::fatal(
                    SqlState::PROTOCOL_VIOLATION,
                    e.to_string(),
                ))
            }
            RelayEnd::Refused(e) => {
                tracing::error!(session = %info.id, error = %e.message, "session ended: a message could not be recorded before it ran");
                let mut fatal = e.clone();
                fatal.severity = crate::messages::error_response::Severity::Fatal;
                Some(fatal)
            }
            RelayEnd::Limit(e) => {
                tracing::warn!(session = %info.id, error = %e, "session ended at a limit");
                Some(ClientError::fatal(
                    SqlState(*b"54000"),
                    format!("sqlgate: {e}"),
                ))
            }
            RelayEnd::Desync(e) => {
                tracing::error!(session = %info.id, error = %e, "session ended: the relay's model of the server's protocol state failed");
                Some(ClientError::fatal(
                    SqlState::PROTOCOL_VIOLATION,
                    e.to_string(),
                ))
            }
            RelayEnd::ServerGone | RelayEnd::ServerError(_) => {
                tracing::warn!(session = %info.id, end = ?outcome.end, "server connection lost");
                (!outcome.last_was_error).then(|| {
                    ClientError::fatal(
                        SqlState::CONNECTION_FAILURE,
                        format!(
                            "the server connection of target \"{}\" was lost",
                            info.target
                        ),
                    )
                })
            }
            RelayEnd::Shutdown if expired => Some(
                ClientError::fatal(
                    SqlState::INVALID_AUTHORIZATION,
                    "terminating connection: the session's token expired",
                )
                .with_hint("connect again with a fresh token"),
            ),
            RelayEnd::Shutdown if by_operator => Some(ClientError::fatal(
                SqlState::ADMIN_SHUTDOWN,
                "terminating connection: the session was ended by a sqlgate operator",
            )),
            RelayEnd::Shutdown => Some(ClientError::fatal(
                SqlState::ADMIN_SHUTDOWN,
                "terminating connection because sqlgate is shutting down",
            )),
        };
        let told = closing.is_some();
        if let Some(err) = closing {
            let mut buf = BytesMut::new();
            err.encode(&mut buf);
            let _ = client.write_all(&buf).await;
        }
        let _ = client.shutdown().await;
        if told {
            client.linger().await;
        }
        tracing::info!(session = %info.id, end = ?outcome.end, "session ended");
        if outcome.reusable {
            pool::release(lease, outcome.status, outcome.unsynced).await;
        }
    }

    /// TLS negotiation and the startup packet. `Ok(None)`: the client went
    /// away or only wanted to cancel.
    async fn handshake(
        &self,
        tcp: TcpStream,
        reader: &mut FrameReader,
    ) -> Result<Option<(ClientStream, Startup)>, ProtocolError> {
        let mut first = [0u8; 1];
        let direct_tls = tcp.peek(&mut first).await? == 1 && first[0] == TLS_HANDSHAKE_RECORD;
        let mut stream = match (&self.config.tls, direct_tls) {
            (Some(tls), true) => {
                let s = TlsAcceptor::from(tls.clone()).accept(tcp).await?;
                MaybeTls::Tls(Box::new(s))
            }
            _ => MaybeTls::Plain(tcp),
        };
        loop {
            let Some(payload) = reader.read_startup(&mut stream).await? else {
                return Ok(None);
            };
            match startup::decode(&payload)? {
                StartupPacket::Ssl => {
                    let (tcp, tls) = match (stream, &self.config.tls) {
                        (MaybeTls::Plain(tcp), Some(tls)) => (tcp, tls.clone()),
                        (mut other, _) => {
                            other.write_all(b"N").await?;
                            stream = other;
                            continue;
                        }
                    };
                    let mut tcp = tcp;
                    tcp.write_all(b"S").await?;
                    let s = TlsAcceptor::from(tls).accept(tcp).await?;
                    stream = MaybeTls::Tls(Box::new(s));
                }
                StartupPacket::GssEnc => stream.write_all(b"N").await?,
                StartupPacket::Cancel { pid, secret } => {
                    self.cancels.cancel(pid, &secret).await;
                    return Ok(None);
                }
                StartupPacket::Startup(s) => return Ok(Some((stream, s))),
            }
        }
    }

    /// Checks the startup packet and the user's password; returns the user
    /// and the database name they asked for.
    async fn authenticate(
        &self,
        client: &mut ClientStream,
        reader: &mut FrameReader,
        startup: &Startup,
    ) -> Result<(Arc<Identity>, String), Refusal> {
        if startup.major != 3 {
            return Err(Some(ClientError::fatal(
                SqlState::FEATURE_NOT_SUPPORTED,
                format!(
                    "unsupported frontend protocol {}.{}: sqlgate supports 3.0",
                    startup.major, startup.minor
                ),
            )));
        }
        let unsupported: Vec<String> = startup
            .params
            .iter()
            .filter(|(k, _)| k.starts_with("_pq_."))
            .map(|(k, _)| k.clone())
            .collect();
        if startup.minor > 0 || !unsupported.is_empty() {
            let mut buf = BytesMut::new();
            messages::encode(&NegotiateProtocolVersion::new(0, unsupported), &mut buf);
            send(client, &buf).await.map_err(|_| None)?;
        }
        if self.config.require_tls && !client.is_tls() {
            return Err(Some(
                ClientError::fatal(SqlState::INVALID_AUTHORIZATION, "sqlgate requires TLS")
                    .with_hint("connect with sslmode=require"),
            ));
        }
        let Some(user) = startup.param("user").filter(|u| !u.is_empty()) else {
            return Err(Some(ClientError::fatal(
                SqlState::INVALID_AUTHORIZATION,
                "no PostgreSQL user name specified in startup packet",
            )));
        };
        if let Some(r) = startup.param("replication") {
            if !matches!(r, "false" | "off" | "no" | "0") {
                return Err(Some(ClientError::fatal(
                    SqlState::FEATURE_NOT_SUPPORTED,
                    "replication connections are not supported by sqlgate",
                )));
            }
        }
        let database = startup
            .param("database")
            .filter(|d| !d.is_empty())
            .unwrap_or(user);
        let failed = || {
            Some(ClientError::fatal(
                SqlState::INVALID_PASSWORD,
                format!("password authentication failed for user \"{user}\""),
            ))
        };
        let known = self.hooks.user(user);
        let identity = match known.as_ref().map(|u| u.method) {
            Some(method @ (AuthMethod::Password | AuthMethod::Token)) => {
                if !client.is_tls() {
                    let what = if method == AuthMethod::Token {
                        format!("\"{user}\" is a token login, which sqlgate accepts only over TLS")
                    } else {
                        format!("user \"{user}\" authenticates with a cleartext password, which sqlgate accepts only over TLS")
                    };
                    return Err(Some(
                        ClientError::fatal(SqlState::INVALID_AUTHORIZATION, what)
                            .with_hint("connect with sslmode=require"),
                    ));
                }
                let mut buf = BytesMut::new();
                auth::cleartext(&mut buf);
                send(client, &buf).await.map_err(|_| None)?;
                let body = read_password_message(client, reader).await?;
                let password = auth::decode_password(&body).map_err(protocol_refusal)?;
                match known {
                    Some(UserAuth {
                        method: AuthMethod::Token,
                        ..
                    }) => self
                        .hooks
                        .verify_token(user, String::from_utf8_lossy(password).into_owned())
                        .await
                        .map_err(Some)?,
                    Some(UserAuth {
                        secret,
                        identity: Some(identity),
                        ..
                    }) if secret.verify_password(password) => identity,
                    _ => return Err(failed()),
                }
            }
            method => {
                let (secret, identity) = match (method, known) {
                    (Some(_), Some(u)) => (u.secret, u.identity),
                    _ => (ScramSecret::mock(user, &self.mock_key), None),
                };
                match self.scram(client, reader, &secret).await {
                    Ok(()) => {}
                    Err(ScramFailure::Proof) => return Err(failed()),
                    Err(ScramFailure::Refused(r)) => return Err(r),
                }
                identity.ok_or_else(failed)?
            }
        };
        let mut buf = BytesMut::new();
        auth::ok(&mut buf);
        send(client, &buf).await.map_err(|_| None)?;
        Ok((identity, database.to_owned()))
    }

    async fn scram(
        &self,
        client: &mut ClientStream,
        reader: &mut FrameReader,
        secret: &ScramSecret,
    ) -> Result<(), ScramFailure> {
        let mut buf = BytesMut::new();
        auth::sasl(&mut buf);
        send(client, &buf)
            .await
            .map_err(|_| ScramFailure::Refused(None))?;
        let body = read_password_message(client, reader)
            .await
            .map_err(ScramFailure::Refused)?;
        let (mechanism, first) = auth::decode_sasl_initial(&body)
            .map_err(|e| ScramFailure::Refused(protocol_refusal(e)))?;
        if mechanism != auth::SCRAM_SHA_256 {
            return Err(ScramFailure::Refused(Some(ClientError::fatal(
                SqlState::INVALID_AUTHORIZATION,
                format!(
                    "SASL mechanism \"{mechanism}\" is not supported; sqlgate offers SCRAM-SHA-256"
                ),
            ))));
        }
        let (state, server_first) = secret.server_first(first).map_err(scram_refusal)?;
        buf.clear();
        auth::sasl_continue(&server_first, &mut buf);
        send(client, &buf)
            .await
            .map_err(|_| ScramFailure::Refused(None))?;
        let body = read_password_message(client, reader)
            .await
            .map_err(ScramFailure::Refused)?;
        let server_final = state.finish(&body).map_err(scram_refusal)?;
        buf.clear();
        auth::sasl_final(&server_final, &mut buf);
        send(client, &buf)
            .await
            .map_err(|_| ScramFailure::Refused(None))
    }
}

enum ScramFailure {
    Proof,
    Refused(Refusal),
}

fn scram_refusal(e: ScramError) -> ScramFailure {
    match e {
        ScramError::BadProof => ScramFailure::Proof,
        other => ScramFailure::Refused(Some(ClientError::fatal(
            SqlState::PROTOCOL_VIOLATION,
            other.to_string(),
        ))),
    }
}

fn protocol_refusal(e: ProtocolError) -> Refusal {
    Some(ClientError::fatal(
        SqlState::PROTOCOL_VIOLATION,
        e.to_string(),
    ))
}

async fn read_password_message(
    client: &mut ClientStream,
    reader: &mut FrameReader,
) -> Result<bytes::Bytes, Refusal> {
    match reader.read_frame(client).await {
        Ok(Some(f)) if f.tag == frontend_tag::PASSWORD => Ok(f.body),
        Ok(Some(f)) => Err(protocol_refusal(ProtocolError::Unexpected {
            tag: f.tag,
            during: "during authentication",
        })),
        // The client hung up (psql does, to prompt for a password).
        Ok(None) | Err(ProtocolError::Io(_)) | Err(ProtocolError::Truncated) => Err(None),
        Err(e) => Err(protocol_refusal(e)),
    }
}

async fn send(client: &mut ClientStream, bytes: &[u8]) -> std::io::Result<()> {
    client.write_all(bytes).await?;
    client.flush().await
}

async fn refuse(client: &mut ClientStream, refusal: Refusal, peer: SocketAddr) {
    if let Some(err) = refusal {
        tracing::info!(%peer, error = %err, "connection refused");
        let mut buf = BytesMut::new();
        err.encode(&mut buf);
        let _ = send(client, &buf).await;
    }
    let _ = client.shutdown().await;
}

/// ParameterStatus for every setting the server reported,
/// BackendKeyData with the server connection's pid and the gateway's
/// secret, ReadyForQuery.
async fn greet(
    client: &mut ClientStream,
    lease: &Lease,
    info: &SessionInfo,
    pid: i32,
    secret: [u8; 4],
    status: u8,
) -> std::io::Result<()> {
    let mut buf = BytesMut::with_capacity(1024);
    for (name, value) in lease.conn_ref().params() {
        let value = if name == "session_authorization" {
            info.user.as_str()
        } else {
            value.as_str()
        };
        parameter_status::encode(name, value, &mut buf);
    }
    messages::encode(
        &BackendKeyData::new(pid, SecretKey::I32(i32::from_be_bytes(secret))),
        &mut buf,
    );
    messages::ready_for_query(status, &mut buf);
    send(client, &buf).await
}

mod startup_settings;
