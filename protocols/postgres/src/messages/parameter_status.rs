//! ParameterStatus: the server's report of a setting the client tracks.

use bytes::BytesMut;
use pgwire::messages::startup::ParameterStatus;

use super::cursor::Cursor;

/// Decodes a ParameterStatus body into `(name, value)`.
pub fn decode(body: &[u8]) -> Option<(&str, &str)> {
    let mut c = Cursor::new(body);
    Some((c.str()?, c.str()?))
}

/// Appends a ParameterStatus message.
pub fn encode(name: &str, value: &str, buf: &mut BytesMut) {
    super::encode(
        &ParameterStatus::new(name.to_owned(), value.to_owned()),
        buf,
    );
}
