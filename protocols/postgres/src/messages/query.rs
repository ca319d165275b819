//! The statement text of Query and Parse: what the policy hook sees.

use super::cursor::Cursor;
use crate::error::ProtocolError;

/// The SQL text of a simple Query body.
pub fn query_text(body: &[u8]) -> Result<&[u8], ProtocolError> {
    Cursor::new(body)
        .cstr()
        .ok_or_else(|| ProtocolError::malformed("Query"))
}

/// The statement name and SQL text of a Parse body.
pub fn parse_text(body: &[u8]) -> Result<(&[u8], &[u8]), ProtocolError> {
    let mut c = Cursor::new(body);
    let name = c.cstr().ok_or_else(|| ProtocolError::malformed("Parse"))?;
    let text = c.cstr().ok_or_else(|| ProtocolError::malformed("Parse"))?;
    Ok((name, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        assert_eq!(query_text(b"select 1\0").unwrap(), b"select 1");
        assert!(query_text(b"select 1").is_err());
        let (name, text) = parse_text(b"s1\0select $1\0\0\0").unwrap();
        assert_eq!((name, text), (&b"s1"[..], &b"select $1"[..]));
        assert!(parse_text(b"s1\0select").is_err());
    }
}
