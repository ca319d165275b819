//! One MySQL client connection: greeting, optional TLS, the handshake
//! response, authentication against the gateway's users, routing, a server
//! connection whose capabilities match the client's, the relay, and the
//! release of the server connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql_common::constants::{CapabilityFlags, StatusFlags};
use mysql_common::io::ParseBuf;
use mysql_common::packets::{HandshakePacket, HandshakeResponse};
use mysql_common::proto::{MyDeserialize, MySerialize};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::auth::{nonce, MysqlSecret};
use crate::backend::{ConnKey, ServerInfo, SESSION_CAPS};
use crate::error::ProtocolError;
use crate::hooks::{AuthMethod, Hooks, SessionInfo};
use crate::kill::KillRegistry;
use crate::messages::err::ClientError;
use crate::messages::ok;
use crate::packet::{self, PacketReader};
use crate::pool::{self, Pool};
use crate::relay::{Relay, RelayEnd, RelayLimits};
use crate::stream::Stream;

/// Longest packet accepted before authentication.
const MAX_HANDSHAKE_PACKET: usize = 64 * 1024;

/// Capabilities the gateway offers clients (before intersecting with the
/// server's): no compression, no LOCAL INFILE, no query attributes, no
/// MariaDB extensions.
const OFFERED_CAPS: u32 = CapabilityFlags::CLIENT_LONG_PASSWORD.bits()
    | CapabilityFlags::CLIENT_FOUND_ROWS.bits()
    | CapabilityFlags::CLIENT_LONG_FLAG.bits()
    | CapabilityFlags::CLIENT_CONNECT_WITH_DB.bits()
    | CapabilityFlags::CLIENT_NO_SCHEMA.bits()
    | CapabilityFlags::CLIENT_PROTOCOL_41.bits()
    | CapabilityFlags::CLIENT_INTERACTIVE.bits()
    | CapabilityFlags::CLIENT_IGNORE_SPACE.bits()
    | CapabilityFlags::CLIENT_IGNORE_SIGPIPE.bits()
    | CapabilityFlags::CLIENT_TRANSACTIONS.bits()
    | CapabilityFlags::CLIENT_SECURE_CONNECTION.bits()
    | CapabilityFlags::CLIENT_MULTI_STATEMENTS.bits()
    | CapabilityFlags::CLIENT_MULTI_RESULTS.bits()
    | CapabilityFlags::CLIENT_PS_MULTI_RESULTS.bits()
    | CapabilityFlags::CLIENT_PLUGIN_AUTH.bits()
    | CapabilityFlags::CLIENT_CONNECT_ATTRS.bits()
    | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA.bits()
    | CapabilityFlags::CLIENT_SESSION_TRACK.bits()
    | CapabilityFlags::CLIENT_DEPRECATE_EOF.bits()
    | CapabilityFlags::CLIENT_COMPRESS.bits();

/// The version the greeting shows when no server has been reached yet.
const FALLBACK_VERSION: &[u8] = b"8.0.0-sqlgate";

const NATIVE: &[u8] = b"mysql_native_password";
const SHA2: &[u8] = b"caching_sha2_password";
const CLEAR: &[u8] = b"mysql_clear_password";

/// Settings of a MySQL listener.
#[derive(Debug, Clone)]
pub struct FrontendConfig {
    /// TLS for clients.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Refuse clients without TLS.
    pub require_tls: bool,
    /// Time from connect to authenticated.
    pub handshake_timeout: Duration,
    /// Relay limits.
    pub limits: RelayLimits,
    /// The open sessions an operator may list and end.
    pub live: Arc<sqlgate_net::live::LiveSessions>,
    /// The pool whose server's greeting (version, capabilities) the
    /// gateway's own greeting mirrors.
    pub greeting_pool: Arc<Pool>,
    /// Name caching_sha2_password in the greeting (MySQL 8's default)
    /// instead of mysql_native_password. Both are accepted either way.
    pub caching_sha2: bool,
    /// Let clients use `LOAD DATA LOCAL INFILE` (off: the capability is
    /// neither offered to clients nor asked of servers).
    pub local_infile: bool,
}

/// Collation ids of client character sets whose multibyte characters may
/// end in the byte of `\` or a quote (big5, sjis, gbk, cp932, gb18030):
/// the server would read statement text differently from the gateway.
const UNSAFE_COLLATIONS: &[u8] = &[1, 13, 24, 28, 84, 86, 87, 88, 95, 96, 248, 249, 250];

/// Everything the sessions of one listener share.
pub struct Gateway {
    hooks: Arc<dyn Hooks>,
    config: FrontendConfig,
    next_id: AtomicU32,
    kills: KillRegistry,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish()
    }
}

type Refusal = Option<ClientError>;

struct Authenticated {
    identity: Arc<crate::hooks::Identity>,
    nonce: [u8; 20],
    client_caps: u32,
    database: Option<String>,
    key: ConnKey,
    /// Sequence id for the gateway's next packet.
    seq: u8,
}

impl Gateway {
    /// A gateway with these hooks and settings.
    pub fn new(hooks: Arc<dyn Hooks>, config: FrontendConfig) -> Arc<Self> {
        Arc::new(Gateway {
            hooks,
            config,
            next_id: AtomicU32::new(0),
            kills: KillRegistry::default(),
        })
    }

    /// Serves one client connection to its end.
    pub async fn handle(
        self: Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
        shutdown: CancellationToken,
    ) {
        let _ = tcp.set_nodelay(true);
        // In [2^30, 2^31): never a server's thread id (see kill.rs); once
        // they wrap, never a live session's.
        let id = loop {
            let id = crate::kill::FIRST_ID
                | (self.next_id.fetch_add(1, Ordering::Relaxed) & (crate::kill::FIRST_ID - 1));
            if !self.kills.in_use(id) {
                break id;
            }
        };
        let mut client = Stream {
            io: Box::new(tcp),
            tls: false,
        };
        let mut reader = PacketReader::default();
        let auth = tokio::time::timeout(
            self.config.handshake_timeout,
            self.handshake(&mut client, &mut reader, id, peer),
        )
        .await;
        let auth = match auth {
            Ok(Ok(a)) => a,
            Ok(Err((seq, refusal))) => return refuse(&mut client, seq, refusal, peer).await,
            Err(_) => return,
        };
        let route = match self.hooks.route(&auth.identity, auth.database.as_deref()) {
            Ok(r) => r,
            Err(e) => return refuse(&mut client, auth.seq, Some(e), peer).await,
        };
        let session = SessionInfo {
            id,
            user: auth.identity.user.clone(),
            identity: auth.identity,
            target: route.target,
            peer,
            tls: client.tls,
        };
        let mut lease = match route.pool.acquire_for(auth.key, &session.user).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(session = id, user = %session.user, target_name = %session.target, error = %e, "no server connection");
                return refuse(
                    &mut client,
                    auth.seq,
                    Some(pool::client_error(&e, &session.target)),
                    peer,
                )
                .await;
            }
        };
        // After a generic greeting (the server was unknown) the client may
        // have chosen capabilities this server lacks: the packets would not
        // match. Now the server is known; a reconnect gets the right
        // greeting.
        if lease.conn().caps & SESSION_CAPS != auth.key.caps {
            let err = ClientError::new(
                1040,
                b"08004",
                format!(
                    "target '{}' negotiated other capabilities than announced; reconnect",
                    session.target
                ),
            );
            drop(lease);
            return refuse(&mut client, auth.seq, Some(err), peer).await;
        }
        let mut judge = self.hooks.session(&session);
        if judge.read_only() {
            if let Err(e) = lease.conn().set_read_only().await {
                tracing::warn!(session = id, error = %e, "making the server session read-only failed");
                let err = e.client_error(&session.target);
                drop(lease);
                return refuse(&mut client, auth.seq, Some(err), peer).await;
            }
        }
        if packet::write(
            &mut client.io,
            auth.seq,
            &ok::payload(ok::STATUS_AUTOCOMMIT),
        )
        .await
        .is_err()
        {
            pool::release(lease).await;
            return;
        }
        match &session.identity.login {
            sqlgate_net::identity::Login::Password => {
                tracing::info!(session = id, user = %session.user, target_name = %session.target, %peer, tls = session.tls, protocol = "mysql", login = "password", "session started");
            }
            sqlgate_net::identity::Login::Token(t) => {
                tracing::info!(session = id, user = ?session.user, groups = ?session.identity.groups, target_name = %session.target, %peer, tls = session.tls, protocol = "mysql", login = "oidc", provider = %t.provider, issuer = ?t.issuer, subject = ?t.subject, matched = ?t.matched, "session started");
            }
        }
        let thread = lease.conn().thread_id;
        let held = Arc::new(tokio::sync::Notify::new());
        self.kills.register(
            id,
            lease.pool().clone(),
            thread,
            &session.user,
            auth.key,
            held.clone(),
        );
        let pool = lease.pool().clone();
        let mut judge = judge;
        let outcomes = judge.outcomes();
        let traffic = Arc::new(sqlgate_net::traffic::Traffic::default());
        let io = std::mem::replace(&mut client.io, Box::new(tokio::io::empty()));
        let counted = sqlgate_net::traffic::Counted::new(io, traffic.clone());
        let mut cbuf = reader.take_buffered();
        // After the OK, a client that chose compression speaks it: the
        // relay reads and writes plain packets through the adapter.
        client.io = if auth.client_caps & CapabilityFlags::CLIENT_COMPRESS.bits() != 0 {
            Box::new(crate::compress::Compressed::new(
                counted,
                std::mem::take(&mut cbuf),
            ))
        } else {
            Box::new(counted)
        };
        let live = self.config.live.register(
            sqlgate_net::live::LiveSession {
                id: id.into(),
                protocol: "mysql",
                user: session.user.clone(),
                target: session.target.clone(),
                client: peer.to_string(),
                started: 0,
            },
            &shutdown,
        );
        let ending = sqlgate_net::identity::ExpiringEnd::new(&session.identity, &live.end);
        let relay = Relay {
            outcomes,
            traffic,
            command: 0,
            params: Default::default(),
            last_prepared: None,
            client: &mut client,
            cbuf,
            server: lease.conn(),
            session: session.clone(),
            nonce: auth.nonce,
            client_caps: auth.client_caps,
            hooks: self.hooks.as_ref(),
            judge,
            limits: self.config.limits,
            kills: &self.kills,
            held,
            pool: &pool,
            masks: Default::default(),
            timings: None,
            expiry: ending.disarm_handle(),
            end: None,
        };
        let end = relay.run(&ending, &shutdown).await;
        drop(live);
        // The session's own end, not the gateway's: its token expired, or
        // an operator ended it.
        let own_end = matches!(end, RelayEnd::Shutdown) && !shutdown.is_cancelled();
        let expired = own_end && ending.expired();
        let by_operator = own_end && !expired;
        drop(ending);
        self.kills.unregister(id);
        match &end {
            RelayEnd::ClientError(e) => {
                tracing::warn!(session = id, error = %e, "client connection closed on a protocol error");
                let err = ClientError::new(1158, b"08S01", format!("sqlgate: {e}"));
                let _ = packet::write(&mut client.io, 0, &err.payload()).await;
            }
            RelayEnd::ServerGone | RelayEnd::ServerError(_) => {
                tracing::warn!(session = id, end = ?end, "server connection lost");
                let err = ClientError::new(
                    2013,
                    b"HY000",
                    format!(
                        "the server connection of target '{}' was lost",
                        session.target
                    ),
                );
                let _ = packet::write(&mut client.io, 0, &err.payload()).await;
            }
            RelayEnd::Shutdown if expired => {
                let err = ClientError::new(
                    1045,
                    b"28000",
                    "sqlgate: the session's token expired; connect again with a fresh token",
                );
                let _ = packet::write(&mut client.io, 0, &err.payload()).await;
            }
            RelayEnd::Shutdown if by_operator => {
                let err = ClientError::new(
                    1927,
                    b"70100",
                    "Connection was killed (sqlgate: the session was ended by an operator)",
                );
                let _ = packet::write(&mut client.io, 0, &err.payload()).await;
            }
            RelayEnd::Shutdown => {
                let err = ClientError::new(1053, b"08S01", "sqlgate is shutting down");
                let _ = packet::write(&mut client.io, 0, &err.payload()).await;
            }
            RelayEnd::ClientGone => {}
        }
        let _ = client.io.shutdown().await;
        tracing::info!(session = id, end = ?end, "session ended");
        if end.reusable() {
            pool::release(lease).await;
        }
    }

    /// Greeting, TLS, handshake response and authentication.
    async fn handshake(
        &self,
        client: &mut Stream,
        reader: &mut PacketReader,
        id: u32,
        peer: SocketAddr,
    ) -> Result<Authenticated, (u8, Refusal)> {
        let greeting_pool = &self.config.greeting_pool;
        let key = ConnKey {
            caps: 0,
            collation: 45,
        };
        // A greeting target that is down must not lock clients out of the
        // other targets: greet with generic values; the session's own
        // target answers for itself after authentication.
        let info = pool::server_info(greeting_pool, key)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot learn the server's greeting; using a generic one");
                ServerInfo {
                    version: FALLBACK_VERSION.to_vec(),
                    caps: OFFERED_CAPS,
                    collation: key.collation,
                }
            });
        let mut offered = OFFERED_CAPS;
        if self.config.local_infile {
            offered |= CapabilityFlags::CLIENT_LOCAL_FILES.bits();
        }
        // Attributes and compression are the client leg's own (the
        // server leg never compresses): offered whatever the server says.
        let mut caps = offered
            & (info.caps
                | CapabilityFlags::CLIENT_CONNECT_ATTRS.bits()
                | CapabilityFlags::CLIENT_COMPRESS.bits());
        if self.config.tls.is_some() {
            caps |= CapabilityFlags::CLIENT_SSL.bits();
        }
        let scramble = nonce();
        let mut part2 = scramble[8..].to_vec();
        part2.push(0);
        let greeting = HandshakePacket::new(
            10,
            info.version.as_slice(),
            id,
            scramble[..8].try_into().unwrap_or([0; 8]),
            Some(part2.as_slice()),
            CapabilityFlags::from_bits_retain(caps),
            info.collation,
            StatusFlags::SERVER_STATUS_AUTOCOMMIT,
            Some(if self.config.caching_sha2 {
                SHA2
            } else {
                NATIVE
            }),
        );
        let mut payload = Vec::new();
        greeting.serialize(&mut payload);
        let gone = |_| (0u8, None);
        packet::write(&mut client.io, 0, &payload)
            .await
            .map_err(gone)?;

        // Read the first answer byte-exactly: after an SSL request the
        // client starts its TLS handshake at once, and those bytes must be
        // left in the socket for the TLS acceptor.
        let (mut seq, mut response) = read_exact_packet(client).await?;
        let tls_requested = response.len() >= 4
            && u32::from_le_bytes([response[0], response[1], response[2], response[3]])
                & CapabilityFlags::CLIENT_SSL.bits()
                != 0;
        if tls_requested {
            let Some(tls) = self.config.tls.clone() else {
                return Err((
                    seq.wrapping_add(1),
                    Some(ClientError::new(
                        1045,
                        b"28000",
                        "TLS is not configured on this listener",
                    )),
                ));
            };
            let Stream { io, .. } = std::mem::replace(
                client,
                Stream {
                    io: Box::new(tokio::io::empty()),
                    tls: false,
                },
            );
            let tls_stream = TlsAcceptor::from(tls)
                .accept(io)
                .await
                .map_err(|_| (0u8, None))?;
            *client = Stream {
                io: Box::new(tls_stream),
                tls: true,
            };
            (seq, response) = read(client, reader).await?;
        }
        let next = seq.wrapping_add(1);
        if self.config.require_tls && !client.tls {
            return Err((
                next,
                Some(ClientError::new(
                    1045,
                    b"28000",
                    "sqlgate requires TLS: connect with --ssl / ssl-mode=REQUIRED",
                )),
            ));
        }
        let hr = HandshakeResponse::deserialize((), &mut ParseBuf(&response)).map_err(|_| {
            (
                next,
                Some(ClientError::new(1043, b"08S01", "Bad handshake")),
            )
        })?;
        let client_caps = hr.capabilities().bits();
        if client_caps & CapabilityFlags::CLIENT_PROTOCOL_41.bits() == 0 {
            return Err((
                next,
                Some(ClientError::new(
                    1043,
                    b"08S01",
                    "sqlgate requires protocol 4.1 clients",
                )),
            ));
        }
        let user = String::from_utf8_lossy(hr.user()).into_owned();
        let database = hr
            .db_name()
            .filter(|d| !d.is_empty())
            .map(|d| String::from_utf8_lossy(d).into_owned());
        let host = peer.ip().to_string();
        let collation = response.get(8).copied().unwrap_or(45);
        if UNSAFE_COLLATIONS.contains(&collation) {
            return Err((
                next,
                Some(ClientError::new(
                    1115,
                    b"42000",
                    "sqlgate does not accept this client character set (big5, gbk, sjis, cp932, gb18030): in it a multibyte character can hide a quote or backslash from the gateway; connect with utf8mb4",
                )),
            ));
        }
        let known = self.hooks.user(&user);
        let secret = known
            .as_ref()
            .map(|u| u.secret.clone())
            .unwrap_or_else(MysqlSecret::impossible);
        let denied = |seq: u8| (seq, Some(ClientError::access_denied(&user, &host)));
        let plugin = hr
            .auth_plugin()
            .map(|p| p.as_bytes().to_vec())
            .unwrap_or_else(|| NATIVE.to_vec());
        let mut seq = next;
        let mut token_identity = None;
        let ok = match known.as_ref().map(|u| u.method) {
            Some(AuthMethod::Token) => {
                if !client.tls && plugin.as_slice() == CLEAR {
                    tracing::warn!(%peer, provider = %user, "a client sent a token over a plain connection (mysql_clear_password): it was refused, but it crossed the network in clear; treat it as exposed");
                }
                if !client.tls {
                    return Err((
                        seq,
                        Some(ClientError::new(
                            1045,
                            b"28000",
                            format!(
                                "'{user}' is a token login, which sqlgate accepts only over TLS"
                            ),
                        )),
                    ));
                }
                let token = match plugin.as_slice() {
                    CLEAR => hr.scramble_buf().to_vec(),
                    // Full authentication: over TLS the client sends the
                    // password (the token) itself; a client that began
                    // with another plugin is switched to it first.
                    _ => {
                        if plugin.as_slice() != SHA2 {
                            let (s, _) = self.switch(client, reader, seq, SHA2, &scramble).await?;
                            seq = s;
                        }
                        packet::write(&mut client.io, seq, &[0x01, 0x04])
                            .await
                            .map_err(gone)?;
                        let (s, token) = read(client, reader).await?;
                        seq = s.wrapping_add(1);
                        token
                    }
                };
                let token = token.strip_suffix(&[0]).unwrap_or(&token);
                let token = String::from_utf8_lossy(token).into_owned();
                token_identity = Some(
                    self.hooks
                        .verify_token(&user, token)
                        .await
                        .map_err(|e| (seq, Some(e)))?,
                );
                true
            }
            Some(AuthMethod::Cleartext) => {
                if !client.tls {
                    return Err((seq, Some(ClientError::new(1045, b"28000", format!("user '{user}' authenticates with a cleartext password, which sqlgate accepts only over TLS")))));
                }
                let (s, password) = self.switch(client, reader, seq, CLEAR, &[]).await?;
                seq = s;
                let password = password.strip_suffix(&[0]).unwrap_or(&password);
                secret.verify_clear(password)
            }
            _ => match plugin.as_slice() {
                NATIVE => secret.verify_native(&scramble, hr.scramble_buf()),
                SHA2 => {
                    let ok = secret.verify_sha2(&scramble, hr.scramble_buf());
                    if ok {
                        // Fast authentication succeeded.
                        seq = packet::write(&mut client.io, seq, &[0x01, 0x03])
                            .await
                            .map_err(gone)?;
                    }
                    ok
                }
                _ => {
                    let (s, token) = self.switch(client, reader, seq, NATIVE, &scramble).await?;
                    seq = s;
                    secret.verify_native(&scramble, &token)
                }
            },
        };
        let Some(identity) = token_identity
            .or_else(|| known.and_then(|u| u.identity))
            .filter(|_| ok)
        else {
            return Err(denied(seq));
        };
        Ok(Authenticated {
            identity,
            nonce: scramble,
            client_caps,
            database,
            key: ConnKey {
                caps: client_caps & SESSION_CAPS & caps,
                collation,
            },
            seq,
        })
    }

    /// Sends an AuthSwitchRequest and returns `(next seq, answer)`.
    async fn switch(
        &self,
        client: &mut Stream,
        reader: &mut PacketReader,
        seq: u8,
        plugin: &[u8],
        data: &[u8],
    ) -> Result<(u8, Vec<u8>), (u8, Refusal)> {
        let mut p = vec![0xfe];
        p.extend_from_slice(plugin);
        p.push(0);
        p.extend_from_slice(data);
        if !data.is_empty() {
            p.push(0);
        }
        packet::write(&mut client.io, seq, &p)
            .await
            .map_err(|_| (0u8, None))?;
        let (s, answer) = read(client, reader).await?;
        Ok((s.wrapping_add(1), answer))
    }
}

async fn read(
    client: &mut Stream,
    reader: &mut PacketReader,
) -> Result<(u8, Vec<u8>), (u8, Refusal)> {
    match reader.read(&mut client.io, MAX_HANDSHAKE_PACKET).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) | Err(ProtocolError::Io(_)) | Err(ProtocolError::Truncated) => Err((0, None)),
        Err(e) => Err((
            2,
            Some(ClientError::new(
                1043,
                b"08S01",
                format!("Bad handshake: {e}"),
            )),
        )),
    }
}

async fn read_exact_packet(client: &mut Stream) -> Result<(u8, Vec<u8>), (u8, Refusal)> {
    use tokio::io::AsyncReadExt;
    let mut header = [0u8; 4];
    client
        .io
        .read_exact(&mut header)
        .await
        .map_err(|_| (0u8, None))?;
    let (len, seq) = packet::header(&header).ok_or((0u8, None))?;
    if len > MAX_HANDSHAKE_PACKET {
        return Err((
            seq.wrapping_add(1),
            Some(ClientError::new(1043, b"08S01", "Bad handshake")),
        ));
    }
    let mut payload = vec![0u8; len];
    client
        .io
        .read_exact(&mut payload)
        .await
        .map_err(|_| (0u8, None))?;
    Ok((seq, payload))
}

async fn refuse(client: &mut Stream, seq: u8, refusal: Refusal, peer: SocketAddr) {
    if let Some(err) = refusal {
        tracing::info!(%peer, error = %err, "connection refused");
        let _ = packet::write(&mut client.io, seq, &err.payload()).await;
    }
    let _ = client.io.shutdown().await;
}
