//! How many workers the async runtime gets when `[gateway] worker_threads`
//! does not say. Why: on a machine the database shares, a second worker
//! costs CPU per transaction that neither proxy nor server gets back
//! (fewer events per wake-up, more wake-ups between threads); measured on
//! two cores at the same transaction rate, one worker cost 6–14 % less
//! than two, at 2–15 % less peak throughput (BENCHMARKS.md, "At the same
//! rate as PgBouncer"). A gateway with the machine to itself keeps a
//! worker per CPU. One worker is a current-thread runtime ([`builder`]).
//!
//! This module must never return zero workers.

use std::net::IpAddr;

/// The default number of workers: one per CPU, but one CPU left to the
/// database when a target is on this machine (at least one).
pub fn default_workers(cpus: usize, targets_here: bool) -> usize {
    let cpus = cpus.max(1);
    if targets_here {
        (cpus - 1).max(1)
    } else {
        cpus
    }
}

/// The runtime for `workers` workers (`None`: tokio's own default). One
/// worker is a current-thread runtime: tokio's multi-thread scheduler
/// with one worker costs about 0.9k instructions more per transaction
/// (its per-batch statistics, a `powf` and two clock reads; its idle
/// bookkeeping) for nothing a single thread needs. Nothing the gateway
/// runs needs a worker handed over (`block_in_place`): long texts are
/// judged on blocking threads (`policy::offload`).
pub fn builder(workers: Option<usize>) -> tokio::runtime::Builder {
    match workers {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut rt = tokio::runtime::Builder::new_multi_thread();
            rt.worker_threads(n.max(1));
            rt
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    }
}

/// Whether a target's `host` is this machine: a loopback name
/// (`localhost` and its subdomains, RFC 6761) or address (an IPv4 one
/// mapped into IPv6 too), or the unspecified address (which connects
/// here). Names that resolve here by other means (the machine's own name
/// or addresses) are not seen: the gateway then keeps a worker per CPU.
pub fn is_this_machine(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let lower = host.to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback() || ip.is_unspecified(),
        Ok(IpAddr::V6(ip)) => {
            ip.is_loopback()
                || ip.is_unspecified()
                || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

/// The CPUs this process may run on.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_on_this_machine_keeps_a_cpu_and_there_is_always_a_worker() {
        assert_eq!(default_workers(2, true), 1);
        assert_eq!(default_workers(8, true), 7);
        assert_eq!(default_workers(1, true), 1);
        assert_eq!(default_workers(2, false), 2);
        assert_eq!(default_workers(0, false), 1);
        assert_eq!(default_workers(0, true), 1);
    }

    #[test]
    fn one_worker_is_a_current_thread_runtime() {
        use tokio::runtime::RuntimeFlavor;
        let flavor = |workers| builder(workers).build().unwrap().handle().runtime_flavor();
        assert_eq!(flavor(Some(1)), RuntimeFlavor::CurrentThread);
        assert_eq!(flavor(Some(2)), RuntimeFlavor::MultiThread);
        assert_eq!(flavor(None), RuntimeFlavor::MultiThread);
    }

    #[test]
    fn this_machine_is_a_loopback_or_unspecified_host() {
        for here in [
            "localhost",
            "LOCALHOST",
            "localhost.",
            "db.localhost",
            "127.0.0.1",
            "127.0.0.2",
            "0.0.0.0",
            "::1",
            "[::1]",
            "::",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_this_machine(here), "{here}");
        }
        for there in [
            "db.example.com",
            "10.0.0.5",
            "::ffff:10.0.0.5",
            "localhost.example.com",
            "192.168.1.1",
            "[localhost",
            "notlocalhost",
            "/var/run/postgresql",
        ] {
            assert!(!is_this_machine(there), "{there}");
        }
    }
}
