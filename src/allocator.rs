//! The process's allocator settings. mimalloc (the `sqlgate` binary's
//! global allocator) keeps freed memory for a while before it gives it
//! back to the operating system (`purge_delay`: a second by default in
//! the bundled mimalloc 3, and only once the freeing thread allocates
//! again). The gateway bounds the
//! large rows it holds by a budget; memory it freed must leave at once,
//! or its resident memory overshoots the budget under load (shown by
//! `tests/pg/busy.rs`).
//!
//! This module must never pass mimalloc an option index that is not one
//! of the bundled mimalloc's.

/// mimalloc's `mi_option_purge_delay`: its index in `mi_option_e`, the
/// same in the v2 and v3 headers libmimalloc-sys bundles (which names no
/// constant for it). The test below holds it to that option's default.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the operating system at once (costs about
/// 0.2 µs of CPU per recorded statement: `cargo bench --bench recording`).
pub fn return_freed_memory_at_once() {
    // SAFETY: `mi_option_set` takes two integers and stores the value in
    // mimalloc's option table: no pointer crosses, nothing is allocated,
    // and every index below `mi_option_last` is valid (PURGE_DELAY is 15
    // of 40-odd).
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) };
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_index_names_purge_delay() {
        // SAFETY: as above; reads an integer from the option table. Its
        // default, 1000 (ms), is purge_delay's in the bundled v3 (the
        // options beside it default to 0).
        let value = unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        assert_eq!(value, 1000);
    }
}
