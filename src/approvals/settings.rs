//! What a rule's `review` asks of its approvers: who, how many, how long
//! a statement waits. Read from the rule's keys (`policy::rules`).

use std::time::Duration;

use serde::Serialize;

/// How long a held statement waits by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// The longest wait a rule may set (a held statement holds its
/// connection, and a transaction it is part of, that long).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// How long an approval in `retry` mode waits for its retry by default.
pub const DEFAULT_VALID_FOR: Duration = Duration::from_secs(15 * 60);

/// How a reviewed statement waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Held on its connection until decided.
    Wait,
    /// Refused at once with the request's number; once approved, the same
    /// identity sending the same statement (same fingerprint, same values)
    /// on the same target runs it once.
    Retry,
}

/// A rule's review settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewSettings {
    /// How a reviewed statement waits.
    pub mode: Mode,
    /// `retry`: how long an approval waits for its retry.
    #[serde(serialize_with = "secs")]
    pub valid_for: Duration,
    /// Groups whose members may decide (none: nobody can approve, and a
    /// reviewed statement is refused at once).
    pub approvers: Vec<String>,
    /// Distinct approvals it takes (at least 1).
    pub approvals: u32,
    /// How long a held statement waits for them.
    #[serde(serialize_with = "secs")]
    pub timeout: Duration,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

impl Default for ReviewSettings {
    fn default() -> Self {
        ReviewSettings {
            mode: Mode::Wait,
            valid_for: DEFAULT_VALID_FOR,
            approvers: Vec::new(),
            approvals: 1,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// A duration as a rule writes it: seconds (`90`) or a number with a
/// unit (`"90s"`, `"10m"`, `"2h"`).
pub fn parse_duration(value: &toml::Value) -> Result<Duration, String> {
    let bad = || "must be seconds (90) or a duration (\"90s\", \"10m\", \"2h\")".to_owned();
    let d = match value {
        toml::Value::Integer(n) if *n > 0 => Duration::from_secs(*n as u64),
        toml::Value::String(s) => {
            let s = s.trim();
            let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let n: u64 = s[..split].parse().map_err(|_| bad())?;
            let unit = match s[split..].trim() {
                "" | "s" => 1,
                "m" => 60,
                "h" => 3600,
                _ => return Err(bad()),
            };
            Duration::from_secs(n.saturating_mul(unit))
        }
        _ => return Err(bad()),
    };
    if d.is_zero() {
        return Err("must be longer than 0".to_owned());
    }
    if d > MAX_TIMEOUT {
        return Err(format!("must be at most {}h", MAX_TIMEOUT.as_secs() / 3600));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_written() {
        let v = |s: &str| parse_duration(&toml::Value::String(s.to_owned()));
        assert_eq!(v("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(v("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(v("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(
            parse_duration(&toml::Value::Integer(5)),
            Ok(Duration::from_secs(5))
        );
        assert!(v("10 minutes").is_err());
        assert!(v("0s").is_err());
        assert!(v("48h").is_err());
        assert!(parse_duration(&toml::Value::Integer(-1)).is_err());
    }
}
