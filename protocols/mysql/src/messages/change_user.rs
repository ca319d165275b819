//! COM_CHANGE_USER: the fields the gateway needs to re-authenticate the
//! client itself (it is never passed to the server).

use mysql_common::constants::CapabilityFlags;

/// A decoded COM_CHANGE_USER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeUser {
    /// The new user.
    pub user: String,
    /// The scramble, computed with the session's handshake nonce.
    pub auth: Vec<u8>,
    /// The database asked for.
    pub database: Option<String>,
    /// The auth plugin the scramble was made with.
    pub plugin: Option<Vec<u8>>,
}

fn cstr(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = buf.iter().position(|&b| b == 0)?;
    Some((&buf[..end], &buf[end + 1..]))
}

/// Decodes the payload (after the command byte) for the client's
/// capability flags.
pub fn decode(payload: &[u8], caps: u32) -> Option<ChangeUser> {
    let (user, rest) = cstr(payload)?;
    let (auth, rest) = if caps & CapabilityFlags::CLIENT_SECURE_CONNECTION.bits() != 0 {
        let (&len, rest) = rest.split_first()?;
        let len = len as usize;
        (rest.get(..len)?, rest.get(len..)?)
    } else {
        cstr(rest)?
    };
    let (database, rest) = cstr(rest).unwrap_or((&[], &[]));
    // Character set (2 bytes), then the plugin name.
    let plugin = rest
        .get(2..)
        .filter(|_| caps & CapabilityFlags::CLIENT_PLUGIN_AUTH.bits() != 0)
        .and_then(cstr)
        .map(|(p, _)| p.to_vec())
        .filter(|p| !p.is_empty());
    Some(ChangeUser {
        user: String::from_utf8_lossy(user).into_owned(),
        auth: auth.to_vec(),
        database: (!database.is_empty()).then(|| String::from_utf8_lossy(database).into_owned()),
        plugin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_41_layout() {
        let caps = CapabilityFlags::CLIENT_SECURE_CONNECTION.bits()
            | CapabilityFlags::CLIENT_PLUGIN_AUTH.bits();
        let mut p = b"bob\0".to_vec();
        p.push(3);
        p.extend_from_slice(&[1, 2, 3]);
        p.extend_from_slice(b"app\0");
        p.extend_from_slice(&[45, 0]);
        p.extend_from_slice(b"mysql_native_password\0");
        let c = decode(&p, caps).unwrap();
        assert_eq!(c.user, "bob");
        assert_eq!(c.auth, vec![1, 2, 3]);
        assert_eq!(c.database.as_deref(), Some("app"));
        assert_eq!(c.plugin.as_deref(), Some(&b"mysql_native_password"[..]));
        assert_eq!(decode(b"bob", caps), None);
        assert_eq!(decode(b"bob\0\x09ab", caps), None);
    }
}
