//! Panics raised in the gateway's code or its dependencies (not in test
//! code), counted by a process-wide hook. A session task that panics ends
//! only that session, so nothing else would show it; the hostile-input
//! tests assert the count does not move.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

static COUNT: AtomicUsize = AtomicUsize::new(0);
static HOOK: Once = Once::new();

/// Installs the hook (once) and returns the count so far.
pub fn watch() -> usize {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let file = info.location().map_or("", |l| l.file());
            if !file.starts_with("tests/") {
                COUNT.fetch_add(1, Ordering::SeqCst);
            }
            previous(info)
        }));
    });
    COUNT.load(Ordering::SeqCst)
}
