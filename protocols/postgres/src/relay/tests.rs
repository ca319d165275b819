//! The relay's two directions on scripted byte streams, at every chunking.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use bytes::BytesMut;
use tokio::sync::Notify;

use super::downstream::Downstream;
use super::marker::marker;
use super::model::{Sent, ServerModel};
use super::names::Statement;
use super::shared::{RelayEnd, RelayLimits, Shared};
use super::upstream::Upstream;
use crate::error::ProtocolError;
use crate::hooks::{Refusal, RefusalKind, SessionHooks, StatementOrigin, Verdict};
use crate::messages::error_response::{ClientError, SqlState};

/// Records statements; refuses those that contain "drop".
#[derive(Default)]
struct Recorder(Mutex<Vec<(StatementOrigin, Vec<u8>)>>);

impl SessionHooks for Recorder {
    fn statement(&mut self, origin: StatementOrigin, sql: &[u8]) -> Verdict<crate::hooks::Masks> {
        self.0.lock().unwrap().push((origin, sql.to_vec()));
        if sql.windows(4).any(|w| w == b"drop") {
            return Verdict::Refuse(Refusal {
                kind: RefusalKind::Denied,
                rule: None,
                tags: Vec::new(),
                reason: "no".to_owned(),
                detail: String::new(),
                hint: String::new(),
                position: 0,
            });
        }
        Verdict::Allow(Vec::new())
    }
    fn read_only(&mut self) -> bool {
        false
    }
}

fn query_sent() -> Sent {
    Sent::Query {
        statements: Default::default(),
        refusal: None,
    }
}

fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn shared() -> Shared {
    Shared {
        model: Mutex::new(ServerModel::new(false, None)),
        unsynced: AtomicBool::new(false),
        draining: AtomicBool::new(false),
        idle: Notify::new(),
        room: Notify::new(),
        notices: Mutex::new(Vec::new()),
        notice: Notify::new(),
        cancel: std::sync::Arc::new(Notify::new()),
    }
}

fn downstream<'a>(shared: &'a Shared, params: &'a mut Vec<(String, String)>) -> Downstream<'a> {
    Downstream::new(shared, params, "agent", false, None)
}

fn upstream<'a>(
    hooks: &'a mut Recorder,
    shared: &'a Shared,
    max_statement_len: usize,
) -> Upstream<'a> {
    Upstream::new(hooks, RelayLimits { max_statement_len }, shared, false)
}

/// A reader that delivers `bytes` in pieces of `size`.
fn chunked(bytes: &[u8], size: usize) -> tokio_test::io::Mock {
    let mut b = tokio_test::io::Builder::new();
    for piece in bytes.chunks(size) {
        b.read(piece);
    }
    b.build()
}

const CHUNKS: [usize; 8] = [1, 2, 3, 5, 7, 64, 4096, usize::MAX];

#[tokio::test]
async fn client_bytes_pass_unchanged_at_every_chunking() {
    let mut forwarded = Vec::new();
    forwarded.extend(msg(b'Q', b"select 1; select 2\0"));
    forwarded.extend(msg(b'P', b"s1\0select $1\0\0\0"));
    forwarded.extend(msg(b'B', b"\0s1\0\0\0\0\0\0\0"));
    forwarded.extend(msg(b'E', b"\0\0\0\0\0"));
    forwarded.extend(msg(b'S', b""));
    forwarded.extend(msg(b'd', &vec![b'x'; 100_000]));
    let mut input = forwarded.clone();
    input.extend(msg(b'X', b""));
    for size in CHUNKS {
        let mut hooks = Recorder::default();
        let shared = shared();
        let mut up = upstream(&mut hooks, &shared, 1 << 20);
        let mut out = Vec::new();
        let mut buf = BytesMut::new();
        let end = up
            .run(
                &mut chunked(&input, size.min(input.len())),
                &mut out,
                &mut buf,
            )
            .await;
        assert!(matches!(end, RelayEnd::ClientGone), "{size}: {end:?}");
        assert!(out == forwarded, "chunks of {size}: bytes changed");
        let seen = hooks.0.into_inner().unwrap();
        assert_eq!(
            seen,
            vec![
                (StatementOrigin::Query, b"select 1; select 2".to_vec()),
                (StatementOrigin::Parse, b"select $1".to_vec())
            ],
            "{size}"
        );
        assert_eq!(
            shared.model().len(),
            6,
            "Query, Parse, Bind, Execute, Sync await answers (and the copy data after)"
        );
        assert!(!shared.unsynced.load(Ordering::Relaxed));
    }
}

#[tokio::test]
async fn oversized_statements_and_bad_lengths_are_protocol_errors() {
    let mut hooks = Recorder::default();
    let shared = shared();
    let mut up = upstream(&mut hooks, &shared, 16);
    let input = msg(b'Q', b"select 'far too long for the limit'\0");
    let end = up
        .run(
            &mut chunked(&input, input.len()),
            &mut Vec::new(),
            &mut BytesMut::new(),
        )
        .await;
    assert!(
        matches!(end, RelayEnd::ClientError(ProtocolError::TooLong { .. })),
        "{end:?}"
    );
    let shared = self::shared();
    let mut up = upstream(&mut hooks, &shared, 16);
    let input = [b'S', 0, 0, 0, 1];
    let end = up
        .run(
            &mut chunked(&input, 5),
            &mut Vec::new(),
            &mut BytesMut::new(),
        )
        .await;
    assert!(
        matches!(end, RelayEnd::ClientError(ProtocolError::BadLength { .. })),
        "{end:?}"
    );
    assert!(hooks.0.into_inner().unwrap().is_empty());
}

#[tokio::test]
async fn server_bytes_pass_unchanged_except_the_server_user() {
    let server_says = |user: &[u8]| -> Vec<u8> {
        let mut auth = b"session_authorization\0".to_vec();
        auth.extend_from_slice(user);
        auth.push(0);
        [
            msg(b'S', b"application_name\0psql\0"),
            msg(
                b'T',
                b"\0\x01a\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0",
            ),
            msg(b'D', &[7u8; 70_000]),
            msg(b'S', &auth),
            msg(b'Z', b"T"),
        ]
        .concat()
    };
    let input = server_says(b"app_owner");
    let expected = server_says(b"agent");
    for size in CHUNKS {
        let shared = shared();
        shared.model().send(query_sent());
        let mut params = Vec::new();
        let mut down = downstream(&shared, &mut params);
        let mut out = Vec::new();
        let end = down
            .run(
                &mut chunked(&input, size.min(input.len())),
                &mut out,
                &mut BytesMut::new(),
            )
            .await;
        assert!(matches!(end, RelayEnd::ServerGone), "{end:?}");
        assert!(out == expected, "chunks of {size}: bytes differ");
        assert_eq!(
            params,
            vec![("application_name".to_owned(), "psql".to_owned())]
        );
        assert_eq!(shared.model().status(), b'T');
        assert!(shared.model().idle());
    }
}

#[tokio::test]
async fn refused_statements_become_markers_and_markers_errors_become_refusals() {
    let input = [
        msg(b'Q', b"drop table t\0"),
        msg(b'P', b"s1\0select 1\0\0\0"),
        msg(b'P', b"s2\0drop table t\0\0\0"),
        msg(b'S', b""),
    ]
    .concat();
    let mut hooks = Recorder::default();
    let shared = shared();
    let mut up = upstream(&mut hooks, &shared, 1 << 20);
    let mut out = Vec::new();
    up.run(
        &mut chunked(&input, input.len()),
        &mut out,
        &mut BytesMut::new(),
    )
    .await;
    let expected = [
        marker(b'Q').to_vec(),
        msg(b'P', b"s1\0select 1\0\0\0"),
        marker(b'P').to_vec(),
        msg(b'S', b""),
    ]
    .concat();
    assert!(
        out == expected,
        "markers replace exactly the refused messages"
    );
    assert_eq!(shared.model().len(), 4);

    // The server fails both markers; the client sees the refusals.
    let marker_error = |extra: &str| {
        let mut e = BytesMut::new();
        ClientError::error(
            SqlState(*b"42703"),
            format!("column \"sqlgate_refused_x\" does not exist{extra}"),
        )
        .encode(&mut e);
        e.to_vec()
    };
    let server = [
        marker_error(""),
        msg(b'Z', b"I"),
        msg(b'1', b""),
        marker_error(""),
        msg(b'Z', b"I"),
    ]
    .concat();
    let mut refusal = BytesMut::new();
    ClientError::error(SqlState::INSUFFICIENT_PRIVILEGE, "no").encode(&mut refusal);
    let expected = [
        refusal.to_vec(),
        msg(b'Z', b"I"),
        msg(b'1', b""),
        refusal.to_vec(),
        msg(b'Z', b"I"),
    ]
    .concat();
    let mut params = Vec::new();
    let mut down = downstream(&shared, &mut params);
    let mut out = Vec::new();
    down.run(&mut chunked(&server, 3), &mut out, &mut BytesMut::new())
        .await;
    assert!(out == expected, "refusals replace the markers' errors");
    assert!(shared.model().idle());
}

#[tokio::test]
async fn an_earlier_error_in_the_batch_wins_over_a_refusal() {
    let shared = shared();
    shared.model().send(Sent::Parse {
        name: b"s1".to_vec(),
        statement: Statement::default(),
        refusal: None,
    });
    shared.model().send(Sent::Parse {
        name: Vec::new(),
        statement: Statement::default(),
        refusal: Some(BytesMut::from(&b"never sent"[..])),
    });
    shared.model().send(Sent::Sync);
    let mut real = BytesMut::new();
    ClientError::error(SqlState(*b"23505"), "duplicate key").encode(&mut real);
    let server = [real.to_vec(), msg(b'Z', b"I")].concat();
    let mut params = Vec::new();
    let mut down = downstream(&shared, &mut params);
    let mut out = Vec::new();
    down.run(&mut chunked(&server, 5), &mut out, &mut BytesMut::new())
        .await;
    assert!(out == server);
    assert!(shared.model().idle());
}

/// A large held row's buffer, once the row is forwarded, gives its
/// allocation back: `capacity()` after `advance` says nothing of it, and a
/// later `reserve` would take the whole row's memory back into use, past
/// the budget that no longer counts it.
#[test]
fn a_forwarded_large_row_leaves_no_large_buffer() {
    use bytes::Buf;
    let chunk = super::shared::READ_CHUNK;
    let total = 8 << 20;
    let mut buf = BytesMut::with_capacity(total);
    buf.resize(total, b'D');
    buf.advance(total);
    super::downstream::release(&mut buf);
    buf.reserve(chunk);
    assert!(buf.capacity() < 4 * chunk, "{}", buf.capacity());
}
