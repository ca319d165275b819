//! The marker a refused Query, Parse or FunctionCall becomes on the wire.
//!
//! Why: the server must do exactly what it does for any failing statement
//! (abort a transaction block, skip an extended batch to Sync, answer a
//! Flush, order the error after everything sent before), so the refused
//! message is replaced by one that fails at parse analysis: a statement
//! naming a column that cannot exist. The model ties the marker's error to
//! the refused message it stands for; the marker's text is never read
//! back. A marker Parse is always for the unnamed statement, so it never
//! touches a named statement on the server.

use std::sync::OnceLock;

use bytes::BytesMut;

use crate::frame::HEADER_LEN;
use crate::messages::frontend_tag;

/// The column name the marker statement uses: random per process.
fn marker_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| format!("sqlgate_refused_{:016x}", rand::random::<u64>()))
}

/// The marker sent in place of a refused message of kind `tag` (Query or
/// Parse; a FunctionCall is replaced by a Query).
pub(super) fn marker(tag: u8) -> BytesMut {
    let sql = format!("SELECT {}", marker_name());
    let mut body = Vec::with_capacity(sql.len() + 8);
    if tag == frontend_tag::PARSE {
        body.push(0); // the unnamed statement
    }
    body.extend_from_slice(sql.as_bytes());
    body.push(0);
    if tag == frontend_tag::PARSE {
        body.extend_from_slice(&0u16.to_be_bytes()); // no parameter types
    }
    let mut out = BytesMut::with_capacity(body.len() + HEADER_LEN);
    out.extend_from_slice(&[tag]);
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// The marker sent in place of a refused Bind: a Parse of a statement
/// named like the marker, which fails as a Bind would (the server then
/// skips to Sync) and touches no statement of the client's.
pub(super) fn bind_marker() -> (Vec<u8>, BytesMut) {
    let name = marker_name();
    let sql = format!("SELECT {name}");
    let mut body = Vec::with_capacity(name.len() + sql.len() + 4);
    body.extend_from_slice(name.as_bytes());
    body.push(0);
    body.extend_from_slice(sql.as_bytes());
    body.push(0);
    body.extend_from_slice(&0u16.to_be_bytes()); // no parameter types
    let mut out = BytesMut::with_capacity(body.len() + HEADER_LEN);
    out.extend_from_slice(&[frontend_tag::PARSE]);
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(&body);
    (name.as_bytes().to_vec(), out)
}
