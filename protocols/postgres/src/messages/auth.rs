//! Authentication exchange messages between a client and the gateway.

use bytes::{Bytes, BytesMut};
use pgwire::messages::startup::Authentication;

use super::cursor::Cursor;
use crate::error::ProtocolError;

/// The SASL mechanism the gateway offers.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

/// Decodes a SASLInitialResponse body: `(mechanism, client-first-message)`.
pub fn decode_sasl_initial(body: &[u8]) -> Result<(&str, &[u8]), ProtocolError> {
    let bad = || ProtocolError::malformed("SASLInitialResponse");
    let mut c = Cursor::new(body);
    let mechanism = c.str().ok_or_else(bad)?;
    let len = c.i32().ok_or_else(bad)?;
    let data = if len < 0 {
        &[][..]
    } else {
        c.bytes(len as usize).ok_or_else(bad)?
    };
    Ok((mechanism, data))
}

/// Decodes a PasswordMessage body (cleartext password).
pub fn decode_password(body: &[u8]) -> Result<&[u8], ProtocolError> {
    Cursor::new(body)
        .cstr()
        .ok_or_else(|| ProtocolError::malformed("PasswordMessage"))
}

/// Appends AuthenticationSASL offering SCRAM-SHA-256.
pub fn sasl(buf: &mut BytesMut) {
    super::encode(&Authentication::SASL(vec![SCRAM_SHA_256.to_owned()]), buf);
}

/// Appends AuthenticationSASLContinue.
pub fn sasl_continue(data: &[u8], buf: &mut BytesMut) {
    super::encode(
        &Authentication::SASLContinue(Bytes::copy_from_slice(data)),
        buf,
    );
}

/// Appends AuthenticationSASLFinal.
pub fn sasl_final(data: &[u8], buf: &mut BytesMut) {
    super::encode(
        &Authentication::SASLFinal(Bytes::copy_from_slice(data)),
        buf,
    );
}

/// Appends AuthenticationCleartextPassword.
pub fn cleartext(buf: &mut BytesMut) {
    super::encode(&Authentication::CleartextPassword, buf);
}

/// Appends AuthenticationOk.
pub fn ok(buf: &mut BytesMut) {
    super::encode(&Authentication::Ok, buf);
}
