//! The masking bypass corpus and its canaries: values seeded in masked
//! columns whose hidden parts must never reach a masked client, in any
//! common disguise. A [`Tap`] sits between a client and the gateway and
//! records every byte the client receives.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The masking rules of the corpus tests: the issue's example, with the
/// `ci` user exempt from all of them.
pub const MASKS: &str = r#"
[[rule]]
name = "analysts"
users = ["analyst"]
targets = ["*"]
allow = ["read", "write", "tx", "session", "code"]
deny = ["ddl", "dcl", "admin", "file", "unknown"]

[[rule]]
name = "ci-code"
users = ["ci"]
targets = ["*"]
allow = ["code"]

[[mask]]
name = "customer-contact"
columns = ["public.customers.email", "app.customers.email"]
function = "email"
except_users = ["ci"]

[[mask]]
name = "national-id"
columns = ["*.customers.ssn"]
function = { keep_last = 4 }
except_users = ["ci"]

[[mask]]
columns = ["*.customers.card"]
function = "redact"
except_users = ["ci"]

[[mask]]
columns = ["*.*.salary"]
function = "null"
except_users = ["ci"]
"#;

/// Ann's row holds the canaries; Bob's is ordinary.
pub const ANN: (&str, &str, &str, &str, &str) = (
    "zqxcanary7@leakmail.test",
    "987-65-4329",
    "4929123456781234",
    "7777777.77",
    "1984-07-12",
);

/// The parts of Ann's values masking must hide (what `email` and
/// `keep_last = 4` show — the domain, the last four digits — is not
/// secret).
pub const CANARIES: [&str; 6] = [
    "zqxcanary7",
    "987-65",
    "98765",
    "49291234",
    "56781234",
    "7777777",
];

/// A canary and its disguises: upper, lower, reversed, hex (both cases)
/// and base64 at each of the three alignments a value can have inside a
/// longer encoded text.
pub fn forms(canary: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![
        ("plain".to_owned(), canary.as_bytes().to_vec()),
        ("upper".to_owned(), canary.to_uppercase().into_bytes()),
        ("lower".to_owned(), canary.to_lowercase().into_bytes()),
        (
            "reversed".to_owned(),
            canary.chars().rev().collect::<String>().into_bytes(),
        ),
        ("hex".to_owned(), hex(canary.as_bytes()).into_bytes()),
        (
            "HEX".to_owned(),
            hex(canary.as_bytes()).to_uppercase().into_bytes(),
        ),
    ];
    for shift in 0..3usize {
        let mut bytes = vec![b'#'; shift];
        bytes.extend_from_slice(canary.as_bytes());
        let whole = bytes.len() / 3 * 3;
        let enc = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes[..whole]);
        // Characters that depend on the canary's bytes alone.
        let skip = if shift > 0 { 4 } else { 0 };
        if enc.len() > skip + 4 {
            out.push((format!("base64+{shift}"), enc.as_bytes()[skip..].to_vec()));
        }
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Every canary form found in `bytes`, named.
pub fn leaks(bytes: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for c in CANARIES {
        for (name, form) in forms(c) {
            if bytes.windows(form.len()).any(|w| w == form.as_slice()) {
                found.push(format!("{c} ({name})"));
            }
        }
    }
    found
}

/// The corpus statements for a dialect (`pg` or `my`).
pub fn corpus(dialect: &str) -> Vec<String> {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/masking/bypass.tsv"),
    )
    .unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once('\t'))
        .filter(|(d, _)| *d == dialect || *d == "both")
        .map(|(_, sql)| sql.to_owned())
        .collect()
}

/// Whether a corpus statement writes or changes the session (so that
/// running it twice, or in one session and not the other, gives
/// different results): the exempt comparison leaves it out.
pub fn writes(sql: &str) -> bool {
    let upper = sql.to_uppercase();
    [
        "INSERT ",
        "UPDATE ",
        "DELETE ",
        "MERGE ",
        "CALL ",
        "SET ",
        "SET_CONFIG(",
    ]
    .iter()
    .any(|w| upper.contains(w))
}

/// A TCP relay in front of a server that records what its clients
/// receive.
pub struct Tap {
    /// Where clients connect.
    pub port: u16,
    received: Arc<Mutex<Vec<u8>>>,
}

impl Tap {
    /// Starts a tap in front of `127.0.0.1:upstream`.
    pub async fn start(upstream: u16) -> Tap {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let rec = received.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(("127.0.0.1", upstream)).await.unwrap();
                let rec = rec.clone();
                tokio::spawn(async move {
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = async move {
                        let _ = tokio::io::copy(&mut cr, &mut sw).await;
                        let _ = sw.shutdown().await;
                    };
                    let down = async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match sr.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            // Recorded before the client can see it.
                            rec.lock().unwrap().extend_from_slice(&buf[..n]);
                            if cw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = cw.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        Tap { port, received }
    }

    /// Everything received since the last call.
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.received.lock().unwrap())
    }
}

/// Whether a corpus statement lists a catalog across the whole database
/// (every view, every default, every statistic) rather than naming this
/// corpus's own objects: other tests create and drop theirs meanwhile, so
/// two runs of it may differ. The exempt comparison leaves it out.
pub fn lists_shared_catalog(sql: &str) -> bool {
    let catalogs = ["pg_views", "pg_attrdef", "pg_statistic", "pg_stats"];
    let own = ["'vip'", "'customers'", "'promo'", "'vip_check'"];
    catalogs.iter().any(|c| sql.contains(c)) && !own.iter().any(|o| sql.contains(o))
}
