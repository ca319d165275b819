//! Hiding values in server messages (errors, notices, warnings) of
//! statements that read masked columns: servers quote the offending
//! value in many messages (`invalid input syntax for type integer:
//! "123-45-6789"`, `Incorrect integer value: '123-45-6789'`, `date field
//! value out of range: 7777777-01-01`).

/// How much of a message is hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scrub {
    /// Nothing: the statement reads no masked column.
    Keep,
    /// Quoted parts and whatever follows the first `": "` are starred.
    Values,
    /// The whole message: the statement runs code whose reads are unknown
    /// (anything it says may be a value).
    All,
}

/// What a message says after scrubbing.
pub fn scrub_message(msg: &[u8], scrub: Scrub) -> Vec<u8> {
    match scrub {
        Scrub::Keep => msg.to_vec(),
        Scrub::All => {
            b"(message hidden by sqlgate: the statement runs code that may read masked columns)"
                .to_vec()
        }
        Scrub::Values => {
            let head = match msg.windows(2).position(|w| w == b": ") {
                Some(i) => &msg[..i + 2],
                None => msg,
            };
            let mut out = Vec::with_capacity(head.len() + 3);
            let mut quote = None;
            for &b in head {
                match quote {
                    Some(q) if b == q => {
                        out.extend_from_slice(b"***");
                        out.push(b);
                        quote = None;
                    }
                    Some(_) => {}
                    None => {
                        out.push(b);
                        if matches!(b, b'"' | b'\'' | b'`') {
                            quote = Some(b);
                        }
                    }
                }
            }
            if quote.is_some() || head.len() < msg.len() {
                out.extend_from_slice(b"***");
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_hidden() {
        let cases: [(&[u8], &[u8]); 4] = [
            (
                b"invalid input syntax for type integer: \"987-65-4329\"",
                b"invalid input syntax for type integer: ***",
            ),
            (
                b"value \"98765\" is out of range for type integer",
                b"value \"***\" is out of range for type integer",
            ),
            (b"division by zero", b"division by zero"),
            (
                b"Incorrect integer value: '987-65-4329' for column `x`",
                b"Incorrect integer value: ***",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                String::from_utf8_lossy(&scrub_message(input, Scrub::Values)),
                String::from_utf8_lossy(expected)
            );
        }
        assert!(!scrub_message(b"987-65-4329", Scrub::All)
            .windows(5)
            .any(|w| w == b"98765"));
    }
}
