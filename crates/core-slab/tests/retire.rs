//! A cache kept in a `thread_local!` without a destructor, retired by another thread-local's destructor:
//! the pattern the facade's `Global` uses, so its fast path has no thread-local state check.

use classalloc_slab::{SizeClass, Slab, SlabCache};
use core::alloc::Layout;
use core::mem::ManuallyDrop;
use core::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};

static SLAB: Slab = Slab::new();

std::thread_local! {
    static CACHE: ManuallyDrop<SlabCache> =
        const { ManuallyDrop::new(SlabCache::with_attach_check(register_retirer)) };
    static RETIRER: Retirer = const { Retirer };
    static TEARDOWN_CHECK: TeardownCheck = const { TeardownCheck };
}

fn cache() -> Pin<&'static SlabCache> {
    // SAFETY: the thread-local is never dropped or moved while its thread runs, and the reference does
    // not leave this thread's calls below (they end before the thread does).
    CACHE.with(|cache| unsafe { Pin::new_unchecked(&*(&**cache as *const SlabCache)) })
}

struct Retirer;

impl Drop for Retirer {
    fn drop(&mut self) {
        cache().retire();
    }
}

fn register_retirer() -> bool {
    RETIRER.try_with(|_| ()).is_ok()
}

const LAYOUT: Layout = match Layout::from_size_align(64, 8) {
    Ok(layout) => layout,
    Err(_) => unreachable!(),
};

/// What the teardown check saw: slots still cached after the retirer ran (after a teardown allocation
/// and free through the cache), plus one; 0 until it runs.
static CACHED_AT_TEARDOWN: AtomicUsize = AtomicUsize::new(0);

/// Registered before the retirer, so its destructor runs after it (destructors run in reverse order).
struct TeardownCheck;

impl Drop for TeardownCheck {
    fn drop(&mut self) {
        let class = SizeClass::for_size(LAYOUT.size()).unwrap();
        // An allocation and a free after the cache retired: they work, through the locked path, and the
        // cache stays empty and unattached.
        let block = SLAB.alloc_cached(cache(), LAYOUT).unwrap();
        // SAFETY: allocated just above with LAYOUT, freed once.
        unsafe { SLAB.dealloc_cached(cache(), block.cast(), LAYOUT).unwrap() };
        CACHED_AT_TEARDOWN.store(cache().cached_slots(class) + 1, Ordering::SeqCst);
    }
}

#[test]
fn a_retired_cache_gives_its_slots_back_and_later_calls_take_the_locked_path() {
    let class = SizeClass::for_size(LAYOUT.size()).unwrap();
    std::thread::spawn(move || {
        TEARDOWN_CHECK.with(|_| ());
        let blocks: Vec<_> = (0..100)
            .map(|_| SLAB.alloc_cached(cache(), LAYOUT).unwrap())
            .collect();
        for block in blocks {
            // SAFETY: allocated above with LAYOUT, freed once.
            unsafe { SLAB.dealloc_cached(cache(), block.cast(), LAYOUT).unwrap() };
        }
        assert!(cache().cached_slots(class) >= 100, "the frees were cached");
    })
    .join()
    .unwrap();
    assert_eq!(
        CACHED_AT_TEARDOWN.load(Ordering::SeqCst),
        1,
        "the retirer gave every slot back before the teardown check ran, and the teardown calls \
         cached nothing"
    );
    assert_eq!(SLAB.totals().live_objects, 0);
}

#[test]
fn a_retired_cache_no_longer_attaches() {
    // Its own slab: the test above checks that SLAB ends with no live object, which an allocation made
    // here at the same moment would break.
    static OWN_SLAB: Slab = Slab::new();
    std::thread::spawn(|| {
        let local = core::pin::pin!(SlabCache::new());
        let block = OWN_SLAB.alloc_cached(local.as_ref(), LAYOUT).unwrap();
        local.as_ref().retire();
        // SAFETY: allocated above with LAYOUT, freed once (through the locked path: the cache retired).
        unsafe {
            OWN_SLAB
                .dealloc_cached(local.as_ref(), block.cast(), LAYOUT)
                .unwrap()
        };
        let class = SizeClass::for_size(LAYOUT.size()).unwrap();
        assert_eq!(local.as_ref().cached_slots(class), 0);
    })
    .join()
    .unwrap();
}
