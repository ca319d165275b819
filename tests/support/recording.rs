//! Reading a gateway's recordings in tests: the sessions' ends arrive as
//! their tasks finish, so tests wait for them by flushing the recorder
//! until the store shows them (a condition, with a deadline).

use std::path::Path;
use std::time::{Duration, Instant};

use sqlgate::store::sqlite::SqliteStore;
use sqlgate::store::writer::Recorder;
use sqlgate::store::Store;

/// The id of an ended session of `user` in the SQLite store at `store`,
/// once the recorder has committed its end.
pub async fn ended_session(rec: &Recorder, store: &Path, user: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        rec.flush();
        let ended = SqliteStore::open(store)
            .unwrap()
            .sessions()
            .unwrap()
            .into_iter()
            .find(|s| s.user == user && s.ended_us.is_some());
        if let Some(s) = ended {
            return s.id;
        }
        assert!(Instant::now() < deadline, "the session never ended");
        tokio::task::yield_now().await;
    }
}

/// `sqlgate sessions replay ID --no-wait` for the configuration `config`.
pub fn replay(config: &Path, id: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sqlgate"))
        .args(["sessions", "replay", id, "--no-wait", "--config"])
        .arg(config)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A file system of its own, 1 MiB, for a store that runs out of space
/// (a tmpfs: the tests run as root in CI); unmounted when dropped.
pub struct SmallDisk {
    pub dir: tempfile::TempDir,
}

impl SmallDisk {
    pub fn mount() -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(
            mounted.success(),
            "this test mounts a tmpfs (it runs as root in CI)"
        );
        SmallDisk { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk with a file until `room` bytes are left (whatever
    /// the store's pages and log already take); returns its path.
    pub fn fill_leaving(&self, room: u64) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 4096];
        let mut written = 0u64;
        while file.write_all(&chunk).is_ok() {
            written += chunk.len() as u64;
        }
        let _ = file.flush();
        assert!(written > room, "the disk had less than {room} bytes free");
        file.set_len(written - room).unwrap();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Everything a store in `dir` holds, for tests that search it for what
/// must never be there: the bytes of its files (the WAL included), and
/// every record's body as read back (long bodies are stored compressed,
/// where a search of the file's bytes would not see a value).
pub fn everything_stored(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut db = None;
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let name = p.to_string_lossy().into_owned();
        if name.contains("sqlgate-recordings") {
            bytes.extend(std::fs::read(&p).unwrap());
            if name.ends_with(".db") {
                db = Some(p);
            }
        }
    }
    let mut store = SqliteStore::open(&db.expect("a store")).unwrap();
    for id in store.session_ids().unwrap() {
        for row in store.rows(&id).unwrap() {
            bytes.extend_from_slice(row.body.as_bytes());
        }
    }
    bytes
}

/// Whether `needle` is anywhere in `haystack`.
pub fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}
