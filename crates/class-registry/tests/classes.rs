//! Segregation: no block holds two lifetime classes; a class's memory goes back at once.

use classalloc_registry::{lifetime_class, ClassTable, LifetimeClass};
use classalloc_slab::{FreeError, SizeClass};
use core::alloc::Layout;
use core::ptr::NonNull;
use std::collections::{HashMap, HashSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, strum::EnumCount, strum::IntoStaticStr)]
#[repr(u8)]
enum Life {
    Frame,
    Request,
    Cache,
}
lifetime_class!(Life);

const CLASSES: [Life; 3] = [Life::Frame, Life::Request, Life::Cache];

fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    statm
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<usize>()
        .unwrap()
        * 4096
}

#[test]
fn names_and_indices_come_from_the_enum() {
    assert_eq!(
        CLASSES.map(|c| (c.index(), c.name())),
        [(0, "Frame"), (1, "Request"), (2, "Cache")]
    );
}

#[test]
fn no_block_holds_two_classes() {
    let table = ClassTable::<Life>::new();
    let mut blocks: HashMap<Life, HashSet<usize>> = HashMap::new();
    let mut live = Vec::new();
    for i in 0..30_000usize {
        let class = CLASSES[i % 3];
        let size = [1usize, 2, 16, 24, 100, 4096][i % 6];
        let layout = Layout::from_size_align(size, 1).unwrap();
        let ptr = table.alloc(class, layout).unwrap().cast::<u8>();
        let geometry = table
            .slab(class)
            .geometry(SizeClass::for_layout(size, 1).unwrap());
        blocks
            .entry(class)
            .or_default()
            .insert(ptr.as_ptr() as usize & !(geometry.block_size - 1));
        // SAFETY: a live allocation of `layout` made by this table.
        assert_eq!(unsafe { table.class_of(ptr, layout) }, Some(class.index()));
        live.push((class, ptr, layout));
    }
    for a in CLASSES {
        for b in CLASSES.iter().filter(|&&b| b != a) {
            assert!(
                blocks[&a].is_disjoint(&blocks[b]),
                "{a:?} and {b:?} share a block"
            );
        }
    }
    for (class, ptr, layout) in live {
        // SAFETY: each allocation is freed once, first refused when sent to another class.
        unsafe {
            let other = CLASSES[(class.index() + 1) % 3];
            assert_eq!(
                table.dealloc(other, ptr, layout),
                Err(FreeError::OwnerMismatch)
            );
            table.dealloc(class, ptr, layout).unwrap();
        }
    }
    for class in CLASSES {
        assert_eq!(table.totals(class).live_objects, 0);
    }
}

#[test]
fn large_allocations_know_their_class_too() {
    let table = ClassTable::<Life>::new();
    let layout = Layout::from_size_align(100_000, 8).unwrap();
    let ptr = table.alloc(Life::Request, layout).unwrap().cast::<u8>();
    // SAFETY: live allocation of `layout`.
    unsafe {
        assert_eq!(table.class_of(ptr, layout), Some(Life::Request.index()));
        assert_eq!(
            table.dealloc(Life::Cache, ptr, layout),
            Err(FreeError::NotASlot)
        );
        table.dealloc(Life::Request, ptr, layout).unwrap();
    }
}

#[test]
fn releasing_a_class_returns_its_memory_and_spares_the_others() {
    let table = ClassTable::<Life>::new();
    let cache: Vec<NonNull<u8>> = (0..10_000)
        .map(|_| table.malloc(Life::Cache, 64).unwrap())
        .collect();
    for p in &cache {
        // SAFETY: a live 64-byte allocation.
        unsafe { p.as_ptr().write_bytes(0xCA, 64) };
    }
    for _ in 0..1_000_000 {
        let p = table.malloc(Life::Request, 48).unwrap();
        // SAFETY: a live 48-byte allocation; the class is released below without freeing it.
        unsafe { p.as_ptr().write_bytes(1, 48) };
    }
    let request = table.totals(Life::Request);
    assert!(request.resident_bytes > 48_000_000);
    let before = resident_bytes();
    // SAFETY: no Request allocation is used after this point.
    unsafe { table.release(Life::Request) };
    let dropped = before - resident_bytes();
    assert!(
        dropped >= request.resident_bytes * 9 / 10,
        "RSS dropped by {dropped}, the class held {}",
        request.resident_bytes
    );
    assert_eq!(table.totals(Life::Request).live_objects, 0);
    // The other class is intact.
    for p in &cache {
        // SAFETY: live 64-byte allocations of Cache.
        assert!(unsafe { core::slice::from_raw_parts(p.as_ptr(), 64) }
            .iter()
            .all(|&b| b == 0xCA));
    }
    assert_eq!(table.totals(Life::Cache).live_objects, 10_000);
}
