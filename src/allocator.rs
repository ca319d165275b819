//! The process's allocator settings. mimalloc (the `sqlgate` binary's
//! global allocator) keeps freed memory for a while before it gives it
//! back to the operating system (`purge_delay`: a second by default in
//! the bundled mimalloc 3, and only once the freeing thread allocates
//! again). The gateway bounds the
//! large rows it holds by a budget; memory it freed must leave at once,
//! or its resident memory overshoots the budget under load (shown by
//! `tests/pg/busy.rs`).
//!
//! The process's allocator itself ([`Allocator`]): mimalloc, asked for
//! plain blocks where every block has the alignment asked for. The
//! `mimalloc` crate's own `MiMalloc` asks for an aligned block at every
//! allocation, and the bundled mimalloc serves that from a free block of
//! the right address only, else by allocating more than was asked and
//! aligning inside it: 2 of 2.2 allocations per transaction took that
//! way under pgbench (callgrind), at about 140 instructions each.
//! [`no_huge_pages`] keeps the kernel's transparent huge pages out of the
//! process's memory (why: on the function).
//!
//! This module must never pass mimalloc an option index that is not one
//! of the bundled mimalloc's, nor ask it for a plain block where a plain
//! block's alignment is less than the layout's.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc,
    mi_zalloc_aligned,
};

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

/// No transparent huge pages for this process's memory from now on.
/// Why: mimalloc 3 commits its arenas whole where the OS overcommits and
/// asks the kernel for huge pages on them; with the kernel's THP on
/// (`always`, or `madvise` as here) a session's first touch of a buffer
/// then made a 2 MiB page resident, and each idle session held 173 KiB
/// instead of 41 (`benches/idle_sessions.sh`, 1,000 sessions; the aim is
/// 64). mimalloc's own switch (`allow_thp`) is read before `main` runs;
/// the process's flag is checked at every page fault. Failure (an old
/// kernel) changes nothing but the memory figure, and is logged.
pub fn no_huge_pages() -> std::io::Result<()> {
    // SAFETY: prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) passes integers only
    // and sets a flag of this process's memory map; no memory is read or
    // written through an argument.
    // (The kernel reads the arguments as unsigned longs: passed as such,
    // not as the variadic call's default ints.)
    let (on, unused): (libc::c_ulong, libc::c_ulong) = (1, 0);
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, on, unused, unused, unused) };
    match rc {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// The alignment of every mimalloc block of at least this size (its
/// `MI_MAX_ALIGN_SIZE` on 64-bit targets; `alloc.c` asserts it of every
/// block it hands out: `block_size < MI_MAX_ALIGN_SIZE ||
/// _mi_is_aligned(block, MI_MAX_ALIGN_SIZE)`). Smaller blocks come in
/// multiples of the word size from 16-byte aligned pages: aligned to 8.
const BLOCK_ALIGN: usize = 16;

/// A layout every plain block of its size satisfies: an alignment of at
/// most [`BLOCK_ALIGN`] and at most the size (the rule the standard
/// library's `System` applies to `malloc`). A block of fewer than 16
/// bytes then needs at most 8 (alignments are powers of two), which every
/// block has; a larger one at most 16, which it has.
fn plain(layout: &Layout) -> bool {
    layout.align() <= BLOCK_ALIGN && layout.align() <= layout.size()
}

/// A new block for `layout` (`zeroed`: filled with zeros), plain where a
/// plain block has the layout's alignment.
#[inline]
fn block(layout: Layout, zeroed: bool) -> *mut u8 {
    let (size, align) = (layout.size(), layout.align());
    // SAFETY: mimalloc's allocation functions take a size and an
    // alignment (a power of two, as every Layout's is) and read or write
    // no memory of the caller's.
    unsafe {
        match (plain(&layout), zeroed) {
            (true, false) => mi_malloc(size),
            (true, true) => mi_zalloc(size),
            (false, false) => mi_malloc_aligned(size, align),
            (false, true) => mi_zalloc_aligned(size, align),
        }
    }
    .cast()
}

/// mimalloc as the global allocator (see the module's doc).
pub struct Allocator;

// SAFETY: each method hands mimalloc the layout's size (and alignment,
// where a plain block might not have it: see `plain`), and mimalloc
// returns a block of at least that size and alignment or null, as
// `GlobalAlloc` requires; blocks are freed and resized by mimalloc alone,
// which accepts any pointer it returned, plain or aligned.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        block(layout, false)
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        block(layout, true)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: the caller passes a block this allocator returned, which
        // mimalloc returned.
        unsafe { mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` is a block mimalloc returned (the caller's
        // promise); the new block keeps the layout's alignment, plain
        // where a plain block of the new size has it.
        let new = Layout::from_size_align(new_size, layout.align());
        unsafe {
            match new.is_ok_and(|l| plain(&l)) {
                true => mi_realloc(ptr.cast::<c_void>(), new_size),
                false => mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()),
            }
        }
        .cast()
    }
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

    #[test]
    fn huge_pages_are_off_for_the_process_once_asked() {
        super::no_huge_pages().unwrap();
        // SAFETY: PR_GET_THP_DISABLE takes no pointer; it returns the
        // process's flag.
        let flag = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(flag, 1);
    }

    #[test]
    fn every_block_has_its_layouts_alignment() {
        use std::alloc::{GlobalAlloc, Layout};
        let a = super::Allocator;
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            // Sizes around every small and medium size class, and a
            // block grown and shrunk across them.
            for size in (align..2048).step_by(align).chain([4096, 65536, 1 << 20]) {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: a non-zero size; each block is freed once, with
                // the layout it was allocated (or resized) with.
                unsafe {
                    let mut held = Vec::new();
                    for _ in 0..3 {
                        let p = a.alloc(layout);
                        let z = a.alloc_zeroed(layout);
                        assert!(!p.is_null() && !z.is_null());
                        assert_eq!(p as usize % align, 0, "{size}/{align}");
                        assert_eq!(z as usize % align, 0, "{size}/{align} zeroed");
                        assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                        held.push(p);
                        held.push(z);
                    }
                    for p in held {
                        let grown = a.realloc(p, layout, size * 3);
                        assert_eq!(grown as usize % align, 0, "{size}/{align} grown");
                        let bigger = Layout::from_size_align(size * 3, align).unwrap();
                        let shrunk = a.realloc(grown, bigger, align);
                        assert_eq!(shrunk as usize % align, 0, "{size}/{align} shrunk");
                        a.dealloc(shrunk, Layout::from_size_align(align, align).unwrap());
                    }
                }
            }
        }
    }
}
