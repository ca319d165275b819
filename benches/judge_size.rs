//! What judging one large text costs in time and memory: the measurement
//! behind the default `max_statement_bytes` and `policy::offload`. Prints,
//! per text shape and size, the judge's wall time and the growth of the
//! process's peak resident memory (VmHWM). Run each shape in its own
//! process for clean peaks:
//! `cargo bench --bench judge_size -- insert 4` (shape: insert | selects).

use std::time::Instant;

use sqlgate::policy::classify::classify_text;
use sqlgate::policy::parse::SqlDialect;

/// `INSERT ... VALUES` with rows of four values, about `bytes` long.
fn insert(bytes: usize) -> String {
    let mut s = String::from("INSERT INTO t (id, name, email, amount) VALUES ");
    let mut i = 0;
    while s.len() < bytes {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&format!("({i}, 'name {i}', 'user{i}@example.com', {i}.5)"));
        i += 1;
    }
    s
}

fn peak_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let shape = args.first().map(String::as_str).unwrap_or("insert");
    let mib: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let bytes = (mib * 1024.0 * 1024.0) as usize;
    let text = match shape {
        "selects" => "SELECT 1;".repeat(bytes / 9),
        _ => insert(bytes),
    };
    let before = peak_kb();
    let start = Instant::now();
    let statements = classify_text(SqlDialect::Postgres, text.as_bytes());
    let took = start.elapsed();
    let grown = peak_kb().saturating_sub(before);
    println!(
        "{shape} {mib} MiB: {} statements, {:.0} ms, peak memory +{} MiB ({:.0}x the text)",
        statements.len(),
        took.as_secs_f64() * 1000.0,
        grown / 1024,
        (grown * 1024) as f64 / text.len() as f64
    );
}
