//! The component's allocator: free lists per size class in front of the system allocator.
//!
//! Decoding one Avro record into `Value`s makes a score of small allocations (a `String`
//! per field name and per string value, a `Vec` per record and array) that all die when
//! the event is encoded again. In a component the system allocator is wasi-libc's
//! dlmalloc, reached through several calls and doing its bookkeeping on each; profiles of
//! the shipped processors showed it taking about 40% of their time. Freed small blocks
//! are instead kept on a free list of their size class and handed out again with a couple
//! of loads and stores, so a batch reuses the blocks of the one before.
//!
//! Small blocks are never given back to dlmalloc: what a component keeps is bounded by
//! the most small blocks it ever had alive at once. Installed as the global allocator
//! only in components (wasm without threads) built with the `allocator` feature (a
//! default); natively the type is only unit-tested.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

/// Block sizes are multiples of this, which is also the largest alignment served here.
const GRANULE: usize = 16;
/// Size classes: 16, 32, …, 512 bytes. Larger blocks go to the system allocator.
const CLASSES: usize = 32;
const LARGEST: usize = GRANULE * CLASSES;

/// Free lists of small blocks in front of [`System`]; for single-threaded use only.
pub struct SizeClassAlloc {
    /// Head of each class's free list; a free block's first word points to the next one.
    heads: UnsafeCell<[*mut u8; CLASSES]>,
}

// SAFETY: components built for wasm without the atomics feature have exactly one thread,
// so the free lists are never touched concurrently.
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
unsafe impl Sync for SizeClassAlloc {}

#[cfg(all(
    feature = "allocator",
    target_family = "wasm",
    not(target_feature = "atomics")
))]
#[global_allocator]
static ALLOCATOR: SizeClassAlloc = SizeClassAlloc::new();

impl SizeClassAlloc {
    pub const fn new() -> Self {
        Self {
            heads: UnsafeCell::new([ptr::null_mut(); CLASSES]),
        }
    }

    /// The class index of `layout`, if it is small enough to be served from a free list.
    fn class(layout: Layout) -> Option<usize> {
        (layout.size() <= LARGEST && layout.align() <= GRANULE)
            .then(|| layout.size().max(1).div_ceil(GRANULE) - 1)
    }

    fn block_layout(class: usize) -> Layout {
        // Cannot fail: the size is a non-zero multiple of the power-of-two alignment.
        Layout::from_size_align((class + 1) * GRANULE, GRANULE).expect("valid block layout")
    }
}

impl Default for SizeClassAlloc {
    fn default() -> Self {
        Self::new()
    }
}

unsafe impl GlobalAlloc for SizeClassAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = Self::class(layout) else {
            // SAFETY: the caller's layout contract is passed on unchanged.
            return unsafe { System.alloc(layout) };
        };
        // SAFETY: single-threaded (see `Sync`), and no reference to the heads outlives
        // this call; a block on a free list is at least one pointer long and aligned for it.
        unsafe {
            let heads = &mut *self.heads.get();
            let head = heads[class];
            if head.is_null() {
                System.alloc(Self::block_layout(class))
            } else {
                heads[class] = *head.cast::<*mut u8>();
                head
            }
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match Self::class(layout) {
            // SAFETY: `block` came from `alloc` with this layout, so it is a block of this
            // class, now unused; single-threaded as above.
            Some(class) => unsafe {
                let heads = &mut *self.heads.get();
                *block.cast::<*mut u8>() = heads[class];
                heads[class] = block;
            },
            // SAFETY: large blocks come from the system allocator with this layout.
            None => unsafe { System.dealloc(block, layout) },
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` makes a valid layout with this alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (Self::class(layout), Self::class(new_layout)) {
            // The block already has room: its class holds the new size too.
            (Some(old), Some(new)) if old == new => block,
            // SAFETY: both layouts are large, so the block is the system allocator's.
            (None, None) => unsafe { System.realloc(block, layout, new_size) },
            // SAFETY: a fresh block of the new layout, the old contents copied over (the
            // smaller of both sizes), then the old block released with its own layout.
            _ => unsafe {
                let moved = self.alloc(new_layout);
                if !moved.is_null() {
                    ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                    self.dealloc(block, layout);
                }
                moved
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_reused_per_class_and_keep_contents_across_realloc() {
        let alloc = SizeClassAlloc::new();
        let small = Layout::from_size_align(24, 8).expect("layout");
        unsafe {
            let a = alloc.alloc(small);
            assert!(!a.is_null());
            assert_eq!(a as usize % GRANULE, 0);
            alloc.dealloc(a, small);
            // Same class (17..=32 bytes): the freed block comes back.
            let b = alloc.alloc(Layout::from_size_align(30, 4).expect("layout"));
            assert_eq!(a, b);

            ptr::copy_nonoverlapping(b"0123456789abcdefghijklmnopqrstu".as_ptr(), b, 30);
            let old = Layout::from_size_align(30, 4).expect("layout");
            // Within the class: same block.
            assert_eq!(alloc.realloc(b, old, 32), b);
            // Across classes, then to a large block: contents follow.
            let c = alloc.realloc(b, Layout::from_size_align(32, 4).expect("layout"), 100);
            assert_eq!(
                std::slice::from_raw_parts(c, 30),
                b"0123456789abcdefghijklmnopqrstu"
                    .as_slice()
                    .get(..30)
                    .expect("30 bytes")
            );
            let d = alloc.realloc(c, Layout::from_size_align(100, 4).expect("layout"), 4096);
            assert_eq!(
                std::slice::from_raw_parts(d, 30),
                &b"0123456789abcdefghijklmnopqrstu"[..30]
            );
            let e = alloc.realloc(d, Layout::from_size_align(4096, 4).expect("layout"), 8192);
            assert_eq!(
                std::slice::from_raw_parts(e, 30),
                &b"0123456789abcdefghijklmnopqrstu"[..30]
            );
            alloc.dealloc(e, Layout::from_size_align(8192, 4).expect("layout"));

            // Over-aligned small layouts bypass the free lists.
            let aligned = Layout::from_size_align(32, 64).expect("layout");
            let f = alloc.alloc(aligned);
            assert_eq!(f as usize % 64, 0);
            alloc.dealloc(f, aligned);
        }
    }

    #[test]
    fn classes_cover_sizes_up_to_the_largest() {
        let class = |size| SizeClassAlloc::class(Layout::from_size_align(size, 1).expect("layout"));
        assert_eq!(class(1), Some(0));
        assert_eq!(class(16), Some(0));
        assert_eq!(class(17), Some(1));
        assert_eq!(class(LARGEST), Some(CLASSES - 1));
        assert_eq!(class(LARGEST + 1), None);
    }
}
