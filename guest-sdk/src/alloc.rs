//! The component's allocator: free stacks per size class in front of the system allocator.
//!
//! Decoding one Avro record into `Value`s makes a score of small allocations (a `String`
//! per field name and per string value, a `Vec` per record and array) that all die when
//! the event is encoded again, and the host's lowering of a batch asks for one buffer per
//! event's value. In a component the system allocator is wasi-libc's dlmalloc, reached
//! through several calls and doing its bookkeeping on each; profiles of the shipped
//! processors showed it taking about 40% of their time. Freed small blocks are instead kept
//! per size class and handed out again, so a batch reuses the blocks of the one before.
//!
//! The free blocks of a class are listed in a stack of pointers beside them, not threaded
//! through the blocks themselves: a free list's pop reads the block it hands out, which was
//! freed a whole batch earlier and has left the cache, and that load stalled every
//! allocation (14% of the fused chain's time in profiles, on that one instruction). The
//! stack's top is where the last free wrote, so a pop reads memory that is already near.
//! New blocks are carved from chunks, so a class's blocks sit together.
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
/// Size classes: 16, 32, …, 2048 bytes. Larger blocks go to the system allocator. A lazy
/// record's slots (one per field, about 70 bytes each in a component) fit up to some 29
/// fields: with classes up to 512 bytes, a record of 7 fields took dlmalloc's path on every
/// event (about 8% of a filter's time in profiles).
const CLASSES: usize = 128;
const LARGEST: usize = GRANULE * CLASSES;
/// New small blocks are carved from chunks of this size (a multiple of [`GRANULE`]).
const CHUNK: usize = 64 << 10;
/// Room for this many pointers when a class's free stack first grows.
const FIRST_STACK: usize = 64;

/// The free blocks of one size class.
struct FreeStack {
    items: *mut *mut u8,
    len: usize,
    cap: usize,
}

impl FreeStack {
    const EMPTY: Self = Self {
        items: ptr::null_mut(),
        len: 0,
        cap: 0,
    };
}

/// Where new small blocks are carved from: the rest of the current chunk.
struct Carve {
    next: *mut u8,
    left: usize,
}

/// Free stacks of small blocks in front of [`System`]; for single-threaded use only.
pub struct SizeClassAlloc {
    stacks: UnsafeCell<[FreeStack; CLASSES]>,
    carve: UnsafeCell<Carve>,
}

// SAFETY: components built for wasm without the atomics feature have exactly one thread,
// so the free stacks and the chunk are never touched concurrently.
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
            stacks: UnsafeCell::new([FreeStack::EMPTY; CLASSES]),
            carve: UnsafeCell::new(Carve {
                next: ptr::null_mut(),
                left: 0,
            }),
        }
    }

    /// The class index of `layout`, if it is small enough to be served from a free stack.
    fn class(layout: Layout) -> Option<usize> {
        (layout.size() <= LARGEST && layout.align() <= GRANULE)
            .then(|| layout.size().max(1).div_ceil(GRANULE) - 1)
    }

    fn block_size(class: usize) -> usize {
        (class + 1) * GRANULE
    }

    fn chunk_layout() -> Layout {
        // Cannot fail: the size is a non-zero multiple of the power-of-two alignment.
        Layout::from_size_align(CHUNK, GRANULE).expect("valid chunk layout")
    }

    /// A block of `class` that was never handed out, carved from the current chunk or a
    /// new one; null when the system allocator has no more memory.
    ///
    /// # Safety
    /// Single-threaded use, as for every method here.
    unsafe fn carve(&self, class: usize) -> *mut u8 {
        let size = Self::block_size(class);
        // SAFETY: single-threaded, and no other reference to the chunk state is alive.
        let carve = unsafe { &mut *self.carve.get() };
        if carve.left < size {
            // The tail of the old chunk (less than one block) is left unused.
            // SAFETY: a valid non-zero layout.
            let chunk = unsafe { System.alloc(Self::chunk_layout()) };
            if chunk.is_null() {
                return chunk;
            }
            carve.next = chunk;
            carve.left = CHUNK;
        }
        let block = carve.next;
        // SAFETY: `size <= left`, so the block and the new `next` are inside the chunk.
        carve.next = unsafe { carve.next.add(size) };
        carve.left -= size;
        block
    }

    /// Makes room for one more pointer on `stack`; false if the system allocator has none.
    ///
    /// # Safety
    /// Single-threaded use; `stack` is one of this allocator's stacks.
    unsafe fn grow(stack: &mut FreeStack) -> bool {
        let cap = (stack.cap * 2).max(FIRST_STACK);
        let Ok(new_layout) = Layout::array::<*mut u8>(cap) else {
            return false;
        };
        let items = if stack.items.is_null() {
            // SAFETY: a valid non-zero layout.
            unsafe { System.alloc(new_layout) }
        } else {
            // The old capacity made a valid layout when it was allocated.
            let Ok(old_layout) = Layout::array::<*mut u8>(stack.cap) else {
                return false;
            };
            // SAFETY: `items` came from the system allocator with `old_layout`.
            unsafe { System.realloc(stack.items.cast(), old_layout, new_layout.size()) }
        };
        if items.is_null() {
            return false;
        }
        stack.items = items.cast();
        stack.cap = cap;
        true
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
        // SAFETY: single-threaded (see `Sync`), and no reference to the stacks outlives
        // this call; the first `len` items of a stack are free blocks of its class.
        unsafe {
            let stack = &mut (*self.stacks.get())[class];
            if stack.len == 0 {
                self.carve(class)
            } else {
                stack.len -= 1;
                *stack.items.add(stack.len)
            }
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let Some(class) = Self::class(layout) else {
            // SAFETY: large blocks come from the system allocator with this layout.
            return unsafe { System.dealloc(block, layout) };
        };
        // SAFETY: `block` came from `alloc` with this layout, so it is a block of this
        // class, now unused; single-threaded as above.
        unsafe {
            let stack = &mut (*self.stacks.get())[class];
            // Without room for it the block is lost to the component, which is short of
            // memory anyway; nothing else is harmed.
            if stack.len < stack.cap || Self::grow(stack) {
                *stack.items.add(stack.len) = block;
                stack.len += 1;
            }
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
    fn many_blocks_alive_at_once_are_distinct_and_all_come_back() {
        // More blocks than one chunk and than the first stack hold, freed and taken again:
        // every block is handed out once at a time, and a freed one is handed out again.
        let alloc = SizeClassAlloc::new();
        let layout = Layout::from_size_align(100, 8).expect("layout");
        let count = 3 * CHUNK / 112;
        unsafe {
            let blocks: Vec<*mut u8> = (0..count).map(|_| alloc.alloc(layout)).collect();
            let mut sorted = blocks.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), count, "a block was handed out twice");
            for (i, &b) in blocks.iter().enumerate() {
                assert!(!b.is_null());
                assert_eq!(b as usize % GRANULE, 0);
                ptr::write_bytes(b, i as u8, 100);
            }
            for (i, &b) in blocks.iter().enumerate() {
                assert!(
                    std::slice::from_raw_parts(b, 100)
                        .iter()
                        .all(|&x| x == i as u8)
                );
            }
            for &b in &blocks {
                alloc.dealloc(b, layout);
            }
            let mut again: Vec<*mut u8> = (0..count).map(|_| alloc.alloc(layout)).collect();
            again.sort();
            assert_eq!(
                again, sorted,
                "the freed blocks are reused before carving new ones"
            );
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
        // A lazy record's slots of a few dozen fields stay off dlmalloc's path.
        assert_eq!(class(2048), Some(127));
    }
}
