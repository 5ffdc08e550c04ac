//! A whole test binary running on classalloc as its global allocator.

use std::collections::{BTreeMap, HashMap};

#[global_allocator]
static ALLOCATOR: classalloc::Global = classalloc::Global::new();

#[test]
fn std_collections_and_threads_run_on_classalloc() {
    let before = classalloc::totals();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut map = BTreeMap::new();
                let mut hashed = HashMap::new();
                for i in 0..20_000u32 {
                    map.insert(i, format!("{t}-{i}"));
                    hashed.insert(format!("k{i}"), vec![t as u8; (i % 300) as usize]);
                }
                for i in (0..20_000u32).step_by(3) {
                    map.remove(&i);
                    hashed.remove(&format!("k{i}"));
                }
                let total: usize = hashed.values().map(Vec::len).sum();
                (map.len(), total)
            })
        })
        .collect();
    for handle in handles {
        let (entries, _) = handle.join().unwrap();
        assert_eq!(entries, 20_000 - 6_667);
    }
    let during = classalloc::totals();
    assert!(during.blocks > 0);
    // Everything the threads built was dropped: live objects are back near where they were.
    assert!(
        during.live_objects < before.live_objects + 1_000,
        "{before:?} -> {during:?}"
    );
}

#[test]
fn growing_vectors_reallocate_through_classes_and_mremap() {
    let mut v: Vec<u64> = Vec::new();
    for i in 0..2_000_000u64 {
        v.push(i);
    }
    assert!(v.iter().enumerate().all(|(i, &x)| i as u64 == x));
    assert!(classalloc::large_stats().live_bytes >= 16_000_000);
    v.truncate(10);
    v.shrink_to_fit();
    assert_eq!(v, (0..10).collect::<Vec<_>>());
}

#[test]
fn over_aligned_layouts_are_honoured() {
    #[repr(align(4096))]
    struct Page([u8; 4096]);
    #[repr(align(65536))]
    struct Huge(u8);
    let pages: Vec<Box<Page>> = (0..10).map(|_| Box::new(Page([1; 4096]))).collect();
    assert!(pages
        .iter()
        .all(|p| (&**p as *const Page as usize) % 4096 == 0));
    let huge = Box::new(Huge(3));
    assert_eq!(&*huge as *const Huge as usize % 65536, 0);
    assert_eq!(huge.0 + pages[9].0[4095], 4);
}

#[test]
fn aligned_alloc_checks_its_alignment() {
    assert!(classalloc::aligned_alloc(64, 3).is_null());
    assert!(classalloc::aligned_alloc(64, 0).is_null());
    assert!(classalloc::aligned_alloc(0, 64).is_null());
    for align in [1, 64, 4096, 1 << 16] {
        let p = classalloc::aligned_alloc(100, align);
        assert!(!p.is_null() && p as usize % align == 0);
        // SAFETY: allocated just above with (100, align).
        unsafe { classalloc::aligned_free(p, 100, align) };
    }
}
