//! The global allocator: the system's, except that allocations of a gigabyte or more
//! are reserved address space (`mmap` with `MAP_NORESERVE`) rather than memory up front.
//!
//! Why: `kafka-protocol` sizes a decoded array's `Vec` from the element count on the
//! wire before reading any element. A 16-byte request claiming 2³¹−1 elements asks for
//! ~150 GB; the system allocator refuses and Rust aborts the process, cutting off every
//! client. Reserved address space costs nothing until touched: the decoder then runs out
//! of input after a few elements, the request is refused, and the `Vec` is unmapped.
//! Nothing in Weir legitimately allocates this much (frames are at most 100 MiB), so
//! only such lying requests take this path. With `vm.overcommit_memory=2` the kernel
//! refuses even reservations and the abort remains: run agents in the default mode.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;

/// Allocations at least this large are reservations.
const RESERVE_FROM: usize = 1 << 30;
/// `mmap` returns page-aligned memory; larger alignments go to the system allocator.
const PAGE: usize = 4096;

pub(crate) struct Reserving;

fn reserved(layout: &Layout) -> bool {
    layout.size() >= RESERVE_FROM && layout.align() <= PAGE
}

// SAFETY: every block is returned by the same branch that allocated it: `reserved` is a
// pure function of the layout, which `dealloc` and `realloc` receive unchanged. Mapped
// memory is readable, writable, zeroed and page-aligned, so it satisfies any layout
// `reserved` admits.
unsafe impl GlobalAlloc for Reserving {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !reserved(&layout) {
            // SAFETY: the caller's contract for `alloc` is passed on unchanged.
            return unsafe { System.alloc(layout) };
        }
        // SAFETY: an anonymous private mapping of a non-zero length has no preconditions.
        let mapped = unsafe {
            libc::mmap(
                ptr::null_mut(),
                layout.size(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if mapped == libc::MAP_FAILED {
            ptr::null_mut()
        } else {
            mapped.cast()
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if reserved(&layout) {
            // SAFETY: as `alloc`; fresh anonymous mappings are zeroed by the kernel.
            unsafe { self.alloc(layout) }
        } else {
            // SAFETY: the caller's contract is passed on unchanged.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        if reserved(&layout) {
            // SAFETY: `block` was mapped by `alloc` with exactly this length.
            unsafe { libc::munmap(block.cast(), layout.size()) };
        } else {
            // SAFETY: `block` came from `System` with this layout.
            unsafe { System.dealloc(block, layout) }
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` with `layout.align()` is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !reserved(&layout) && !reserved(&new_layout) {
            // SAFETY: both sides are the system allocator's.
            return unsafe { System.realloc(block, layout, new_size) };
        }
        // SAFETY: `new_layout` is valid (above); the old block is live for `layout`.
        unsafe {
            let moved = self.alloc(new_layout);
            if !moved.is_null() {
                ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                self.dealloc(block, layout);
            }
            moved
        }
    }
}
