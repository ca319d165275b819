//! The untagged packets a client may open a connection with.

use super::cursor::Cursor;
use crate::error::ProtocolError;

const SSL_REQUEST: i32 = 80_877_103;
const GSSENC_REQUEST: i32 = 80_877_104;
const CANCEL_REQUEST: i32 = 80_877_102;

/// What a client's first packet asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum StartupPacket {
    /// SSLRequest: upgrade to TLS.
    Ssl,
    /// GSSENCRequest: we always answer no.
    GssEnc,
    /// CancelRequest for the session with this key.
    Cancel {
        /// The process id the gateway issued.
        pid: i32,
        /// The secret key bytes (4 in protocol 3.0, up to 256 in 3.2).
        secret: Vec<u8>,
    },
    /// StartupMessage.
    Startup(Startup),
}

/// A StartupMessage: protocol version and parameters.
#[derive(Debug, PartialEq, Eq)]
pub struct Startup {
    /// Major protocol version (3).
    pub major: u16,
    /// Minor protocol version.
    pub minor: u16,
    /// Parameters in the order the client sent them.
    pub params: Vec<(String, String)>,
}

impl Startup {
    /// The value of a parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Decodes a startup-phase payload (after the length).
pub fn decode(payload: &[u8]) -> Result<StartupPacket, ProtocolError> {
    let bad = || ProtocolError::malformed("startup packet");
    let mut c = Cursor::new(payload);
    let code = c.i32().ok_or_else(bad)?;
    match code {
        SSL_REQUEST => Ok(StartupPacket::Ssl),
        GSSENC_REQUEST => Ok(StartupPacket::GssEnc),
        CANCEL_REQUEST => {
            let pid = c.i32().ok_or_else(bad)?;
            let secret = c.rest().to_vec();
            if secret.len() < 4 || secret.len() > 256 {
                return Err(bad());
            }
            Ok(StartupPacket::Cancel { pid, secret })
        }
        version => {
            let major = (version >> 16) as u16;
            let minor = (version & 0xffff) as u16;
            let mut params = Vec::new();
            loop {
                let name = c.str().ok_or_else(bad)?;
                if name.is_empty() {
                    break;
                }
                let value = c.str().ok_or_else(bad)?;
                params.push((name.to_owned(), value.to_owned()));
            }
            Ok(StartupPacket::Startup(Startup {
                major,
                minor,
                params,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_message() {
        let mut p = 196_608i32.to_be_bytes().to_vec();
        p.extend_from_slice(b"user\0agent\0database\0app\0\0");
        let StartupPacket::Startup(s) = decode(&p).unwrap() else {
            panic!("not a startup")
        };
        assert_eq!((s.major, s.minor), (3, 0));
        assert_eq!(s.param("user"), Some("agent"));
        assert_eq!(s.param("database"), Some("app"));
        // missing final terminator
        assert!(decode(&p[..p.len() - 1]).is_err());
    }

    #[test]
    fn requests() {
        assert_eq!(
            decode(&SSL_REQUEST.to_be_bytes()).unwrap(),
            StartupPacket::Ssl
        );
        let mut c = CANCEL_REQUEST.to_be_bytes().to_vec();
        c.extend_from_slice(&7i32.to_be_bytes());
        c.extend_from_slice(&9i32.to_be_bytes());
        assert_eq!(
            decode(&c).unwrap(),
            StartupPacket::Cancel {
                pid: 7,
                secret: 9i32.to_be_bytes().to_vec()
            }
        );
        assert!(decode(&c[..6]).is_err());
    }
}
