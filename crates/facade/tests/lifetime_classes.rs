//! `ClassAlloc<Life>` as the global allocator of this test binary: scopes, frees across scopes, handles,
//! release, reports.

use allocator_api2::boxed::Box as ApiBox;
use allocator_api2::vec::Vec as ApiVec;
use classalloc::{lifetime_class, with_class, ClassAlloc, LifetimeClass};
use core::alloc::Layout;

#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::EnumCount, strum::IntoStaticStr)]
#[repr(u8)]
enum Life {
    General,
    Request,
    Cache,
    Scratch,
    /// Used only by the release test: releasing a class is sound only when nothing else allocated in it.
    Released,
    /// Used only by the collect test, which counts the class's blocks.
    Collected,
}
lifetime_class!(Life);

#[global_allocator]
static ALLOC: ClassAlloc<Life> = ClassAlloc::new();

/// The class that owns a `Vec`'s buffer, per the allocator's own lookup.
fn class_of<T>(v: &Vec<T>) -> Option<usize> {
    let layout = Layout::array::<T>(v.capacity()).unwrap();
    let ptr = core::ptr::NonNull::new(v.as_ptr() as *mut u8).unwrap();
    // SAFETY: a live allocation of the global allocator with exactly this layout.
    unsafe { ALLOC.table().class_of(ptr, layout) }
}

#[test]
fn scopes_route_global_allocations_and_frees_find_their_class() {
    let outside: Vec<u64> = Vec::with_capacity(10);
    let inside: Vec<u64> = with_class(Life::Request, || {
        let nested: Vec<u64> = with_class(Life::Scratch, || Vec::with_capacity(10));
        assert_eq!(class_of(&nested), Some(Life::Scratch.index()));
        Vec::with_capacity(10)
    });
    assert_eq!(class_of(&outside), Some(Life::General.index()));
    assert_eq!(class_of(&inside), Some(Life::Request.index()));
    // Freed in another scope than the one it was allocated in: goes back to Request.
    let before = ALLOC.class_totals(Life::Request).live_objects;
    with_class(Life::Cache, move || drop(inside));
    assert_eq!(ALLOC.class_totals(Life::Request).live_objects, before - 1);
    // Growing inside another scope keeps the object in its class.
    let mut grown = with_class(Life::Scratch, || vec![1u8; 16]);
    with_class(Life::Cache, || grown.extend_from_slice(&[2; 10_000]));
    assert_eq!(class_of(&grown), Some(Life::Scratch.index()));
}

#[test]
fn a_scope_is_restored_when_its_closure_panics() {
    let result = std::panic::catch_unwind(|| with_class(Life::Scratch, || panic!("inside")));
    assert!(result.is_err());
    let after: Vec<u8> = Vec::with_capacity(32);
    assert_eq!(class_of(&after), Some(Life::General.index()));
}

#[test]
fn handles_work_with_allocator_api2_collections_and_hashbrown() {
    let cache = ALLOC.handle(Life::Cache);
    let mut v = ApiVec::new_in(cache);
    for i in 0..10_000u32 {
        v.push(i);
    }
    assert_eq!(v.iter().map(|&x| x as u64).sum::<u64>(), 49_995_000);
    let boxed = ApiBox::new_in([7u64; 3], cache);
    let mut map = hashbrown::HashMap::new_in(cache);
    for i in 0..1000 {
        map.insert(i, i * 2);
    }
    assert_eq!(map[&500], 1000);
    let totals = ALLOC.class_totals(Life::Cache);
    assert!(totals.live_objects >= 3 && totals.live_bytes >= 40_000);
    // Zero-sized layouts never reach the slab.
    let empty: ApiVec<u8, _> = ApiVec::with_capacity_in(0, cache);
    drop((v, boxed, map, empty));
    fn assert_handle<A: allocator_api2::alloc::Allocator + Copy + Send + Sync>(_: A) {}
    assert_handle(cache);
}

#[test]
fn explicit_class_calls_release_and_report() {
    let layout = Layout::from_size_align(100, 4).unwrap();
    let p = ALLOC.alloc(Life::Released, layout).unwrap();
    assert_eq!(p.len(), 104);
    let q = ALLOC.malloc(Life::Released, 24).unwrap();
    assert_eq!(q.as_ptr() as usize % 32, 0);
    let big = ALLOC.malloc(Life::Released, 1 << 20).unwrap();
    assert!(ALLOC.class_totals(Life::Released).resident_bytes > 1 << 20);
    // SAFETY: all three live in Released, which nothing else uses; not used after the release.
    unsafe {
        assert!(
            ALLOC.free(Life::Cache, p.cast(), layout).is_err(),
            "wrong class"
        );
        ALLOC.release(Life::Released);
    }
    let _ = (q, big);
    let totals = ALLOC.class_totals(Life::Released);
    assert_eq!(
        (totals.live_objects, totals.blocks, totals.resident_bytes),
        (0, 0, 0)
    );
    let report = ALLOC.report().to_string();
    // Named classes by name; the default class, never named by a call, by index.
    assert!(
        report.contains("Released") && report.contains("#0 "),
        "{report}"
    );
}

#[test]
fn collect_gives_back_what_this_threads_caches_hold() {
    let layout = Layout::from_size_align(64, 8).unwrap();
    std::thread::spawn(move || {
        // 20,000 slots of 64 B: after the frees, the thread's bin and the class's transfer cache hold
        // them all (one bin and four batches), so their two blocks stay mapped.
        let objects: Vec<_> = (0..20_000)
            .map(|_| ALLOC.alloc(Life::Collected, layout).unwrap())
            .collect();
        for object in objects {
            // SAFETY: allocated above in Collected with `layout`, freed once.
            unsafe { ALLOC.free(Life::Collected, object.cast(), layout).unwrap() };
        }
        let totals = ALLOC.class_totals(Life::Collected);
        assert_eq!(totals.live_objects, 0);
        assert!(totals.blocks >= 2, "the caches keep the blocks: {totals:?}");
        ALLOC.collect();
        let totals = ALLOC.class_totals(Life::Collected);
        assert_eq!(
            (totals.blocks, totals.resident_bytes),
            (0, 0),
            "collect gave every cached slot back, and the empty blocks with them"
        );
    })
    .join()
    .unwrap();
}
