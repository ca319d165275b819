//! The parts of a gateway listener that know no wire protocol: the accept
//! loop with graceful shutdown, and the session pool of server
//! connections. `protocols/postgres` and `protocols/mysql` build on it;
//! it must never learn either protocol, and they never depend on each
//! other.

#![warn(missing_docs)]

pub mod accept;
pub mod ahead;
pub mod budget;
pub mod hostile;
pub mod identity;
pub mod live;
pub mod outcome;
pub mod parameters;
pub mod pool;
pub mod sample;
pub mod scrub;
pub mod secret;
pub mod session;
pub mod traffic;
pub mod verdict;
pub mod woken;
