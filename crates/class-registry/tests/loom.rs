//! Loom models of two lifetime classes: threads in different classes share no lock or block; threads in
//! the same class meet only at that class's head and block locks.
#![cfg(loom)]

use classalloc_registry::{lifetime_class, ClassTable};
use classalloc_slab::{ClassStats, Geometry, SizeClass, SlabConfig};
use core::ptr::NonNull;
use loom::sync::Arc;
use loom::thread;

#[derive(Clone, Copy, Debug, strum::EnumCount, strum::IntoStaticStr)]
#[repr(u8)]
enum Life {
    Short,
    Long,
}
lifetime_class!(Life);

struct TwoSlotBlocks;
impl SlabConfig for TwoSlotBlocks {
    const GEOMETRY: Geometry = Geometry::SEED
        .with_block_shift(64, 12)
        .with_max_slots(64, 2);
}

type Table = ClassTable<Life, TwoSlotBlocks>;

#[derive(Clone, Copy)]
struct Slot(NonNull<u8>);
// SAFETY: a slot is plain memory owned by whichever thread holds the value.
unsafe impl Send for Slot {}

fn churn(table: &Table, class: Life) {
    let a = Slot(table.malloc(class, 64).unwrap());
    let b = Slot(table.malloc(class, 64).unwrap());
    // SAFETY: both live, 64 bytes each, freed once.
    unsafe {
        a.0.as_ptr().write_bytes(class as u8, 64);
        table.free(class, a.0, 64).unwrap();
        table.free(class, b.0, 64).unwrap();
    }
}

/// The 64-byte class's counters (reading every size class would exceed loom's branch budget).
fn stats(table: &Table, class: Life) -> ClassStats {
    table
        .slab(class)
        .class_stats(SizeClass::for_size(64).unwrap())
}

fn check(model: fn()) {
    loom::model(move || {
        thread::Builder::new()
            .stack_size(4 << 20)
            .spawn(model)
            .unwrap()
            .join()
            .unwrap();
    });
}

#[test]
fn loom_registry_two_threads_on_different_classes() {
    check(|| {
        let table = Arc::new(Table::with_config());
        let other = {
            let table = table.clone();
            thread::spawn(move || churn(&table, Life::Long))
        };
        churn(&table, Life::Short);
        other.join().unwrap();
        for class in [Life::Short, Life::Long] {
            let stats = stats(&table, class);
            // Everything freed: every block went back to the page source.
            assert_eq!((stats.live_objects, stats.blocks), (0, 0));
        }
    });
}

#[test]
fn loom_registry_two_threads_on_the_same_class() {
    check(|| {
        let table = Arc::new(Table::with_config());
        let kept = Slot(table.malloc(Life::Long, 64).unwrap());
        let other = {
            let table = table.clone();
            thread::spawn(move || {
                // A free from another thread than the allocating one.
                // SAFETY: `kept` is live and freed once, here.
                unsafe { table.free(Life::Long, kept.0, 64).unwrap() };
                churn(&table, Life::Long);
            })
        };
        churn(&table, Life::Long);
        other.join().unwrap();
        let long = stats(&table, Life::Long);
        assert_eq!(long.live_objects, 0);
        assert_eq!(long.blocks, 0);
        assert_eq!(stats(&table, Life::Short).blocks, 0);
    });
}
