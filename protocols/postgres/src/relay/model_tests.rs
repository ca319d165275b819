//! The model on scripted answers: COPY windows, skip-to-Sync, answers
//! that cannot be placed.

use std::collections::VecDeque;

use bytes::BytesMut;

use super::model::{Sent, ServerModel};
use crate::error::ProtocolError;

fn model(sent: Vec<Sent>) -> ServerModel {
    let mut m = ServerModel::new(false, None);
    for s in sent {
        m.send(s);
    }
    m
}

fn answers(m: &mut ServerModel, tags: &[u8]) -> Result<(), ProtocolError> {
    for &t in tags {
        let body: &[u8] = if t == b'Z' { b"I" } else { b"" };
        m.answer(t, body)?;
    }
    Ok(())
}

fn execute() -> Sent {
    Sent::Execute { portal: Vec::new() }
}

#[test]
fn libpq_copy_in_sends_a_sync_the_server_ignores() {
    // PQexecParams("COPY ... FROM STDIN"): Execute and Sync at once,
    // then the data, CopyDone and a second Sync.
    let sent = || {
        vec![
            execute(),
            Sent::Sync,
            Sent::CopyData,
            Sent::CopyDone,
            Sent::Sync,
        ]
    };
    let mut m = model(sent());
    answers(&mut m, b"GCZ").unwrap();
    assert!(m.idle());
    // A bad row: the error ends the copy; the last Sync ends the skip.
    let mut m = model(sent());
    answers(&mut m, b"GEZ").unwrap();
    assert!(m.idle());
}

#[test]
fn what_cannot_be_placed_ends_the_session() {
    // Where a data error struck decides whether this Sync was read
    // inside the copy: the model does not guess.
    let mut m = model(vec![
        execute(),
        Sent::CopyData,
        Sent::Sync,
        Sent::CopyData,
        Sent::CopyDone,
    ]);
    assert!(answers(&mut m, b"GE").is_err());
    // A Query sent inside a copy is read by the copy's error, or not.
    let mut m = model(vec![
        execute(),
        Sent::Query {
            statements: VecDeque::new(),
            refusal: None,
        },
    ]);
    assert!(answers(&mut m, b"GE").is_err());
    // Rows nobody asked for.
    let mut m = model(vec![Sent::Sync]);
    assert!(answers(&mut m, b"D").is_err());
    let mut m = model(vec![]);
    assert!(answers(&mut m, b"Z").is_err());
}

#[test]
fn messages_after_an_error_get_no_answer_until_sync() {
    let mut m = model(vec![Sent::Describe {
        portal: false,
        name: b"nope".to_vec(),
        own: None,
    }]);
    answers(&mut m, b"E").unwrap();
    // Sent after the error: discarded by the server, not queued.
    m.send(Sent::Query {
        statements: VecDeque::new(),
        refusal: Some(BytesMut::from(&b"refused"[..])),
    });
    m.send(execute());
    assert!(m.idle());
    m.send(Sent::Sync);
    m.send(execute());
    answers(&mut m, b"ZDC").unwrap();
    assert!(m.idle());
}
