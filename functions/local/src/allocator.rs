//! The settings of the process allocator, mimalloc (the `reclaim` binary's global allocator,
//! under SQLite too).
//!
//! mimalloc keeps freed memory for a second before it returns it to the OS. A usage import frees
//! a chunk's worth of rows on one thread while the next chunk is built on another, and with
//! that delay its peak memory was 175 MB instead of 122 MB, for no measurable speed
//! (BENCHMARKS.md, "Usage import").

use libmimalloc_sys::{mi_option_get, mi_option_set, mi_option_t};

/// `mi_option_purge_delay`: its place in `mi_option_e` in the `mimalloc.h` that
/// libmimalloc-sys builds (v2 and v3 alike); the crate's Rust names leave it out.
const PURGE_DELAY: mi_option_t = 15;

/// mimalloc's default purge delay, in milliseconds (`options.c` of its v3; the header's comment
/// says 10, which was v2's): how the option is recognised before it is changed, so a different
/// table in a later mimalloc is left alone rather than misset.
const DEFAULT_PURGE_DELAY: std::ffi::c_long = 1000;

/// Makes mimalloc return freed memory to the OS at once. Returns whether the setting took.
pub fn return_freed_memory_at_once() -> bool {
    #[allow(unsafe_code)]
    // SAFETY: mi_option_get and mi_option_set read and write mimalloc's own table of settings;
    // both may be called at any time from any thread, and take plain integers.
    unsafe {
        if mi_option_get(PURGE_DELAY) != DEFAULT_PURGE_DELAY {
            return false;
        }
        mi_option_set(PURGE_DELAY, 0);
        mi_option_get(PURGE_DELAY) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_is_found_by_its_default_and_set_to_nothing() {
        assert!(return_freed_memory_at_once());
        // Set already: a second call recognises nothing and changes nothing.
        assert!(!return_freed_memory_at_once());
    }
}
