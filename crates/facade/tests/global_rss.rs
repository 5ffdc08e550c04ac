//! Memory goes back through `Global`: after threads allocate and free 96 MiB of mixed sizes and exit, the
//! process's anonymous resident memory returns within 1 MiB plus 1% of where it started once the page
//! source's hold has decayed, and `collect()` gives back what the calling thread kept. Alone in its binary
//! (one test), so that nothing else moves the process's resident memory meanwhile.

use std::alloc::{GlobalAlloc, Layout};
use std::time::Duration;

use classalloc::Global;

#[path = "../../core-slab/tests/support/rss.rs"]
mod rss;
use rss::anonymous_bytes;

const MIB: usize = 1 << 20;

/// Allocates `bytes` in objects of sizes cycling through `sizes`, writes every byte, frees them all.
fn fill_and_free(sizes: &[usize], bytes: usize) {
    let mut objects = Vec::with_capacity(bytes / 64);
    let mut total = 0;
    let mut next = 0;
    while total < bytes {
        let size = sizes[next % sizes.len()];
        next += 1;
        let layout = Layout::from_size_align(size, 8).unwrap();
        // SAFETY: a non-zero size; the object is written within its size, then freed with its layout.
        unsafe {
            let p = Global.alloc(layout);
            assert!(!p.is_null());
            p.write_bytes(0x5A, size);
            objects.push((p, layout));
        }
        total += size;
    }
    for (p, layout) in objects {
        // SAFETY: allocated above with this layout, freed once.
        unsafe { Global.dealloc(p, layout) };
    }
}

fn above(now: usize, baseline: usize) -> String {
    format!(
        "{} KiB above the baseline",
        now.saturating_sub(baseline) / 1024
    )
}

#[test]
#[cfg_attr(
    classalloc_asan,
    ignore = "AddressSanitizer writes shadow memory for the free blocks it poisons"
)]
fn memory_freed_through_global_leaves_the_process() {
    // Start-up first (the page source's arena, checked mode's tables, a thread's first allocations), so
    // that the baseline holds what a program has before its work.
    std::thread::spawn(|| fill_and_free(&[24, 100, 20_000], MIB))
        .join()
        .unwrap();
    classalloc::collect();
    let baseline = anonymous_bytes();

    // Two threads at once, small and medium sizes: 96 MiB written and freed, the threads exit.
    let workers: Vec<_> = [
        vec![16, 48, 64, 200, 256, 1000],
        vec![24, 128, 512, 3000, 9000, 100_000],
    ]
    .into_iter()
    .map(|sizes| std::thread::spawn(move || fill_and_free(&sizes, 48 * MIB)))
    .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let after = anonymous_bytes();
    eprintln!("after the threads: {}", above(after, baseline));
    // At once, what may stay is the page source's hold on freed blocks (at most 4 MiB) and the buddy's links
    // in free blocks.
    assert!(after <= baseline + 6 * MIB, "{}", above(after, baseline));

    // The hold decays: the next call into the page source after DECAY_MS gives all but 512 KiB back
    // (CACHE_IDLE_BYTES), so the buddy's links and the tables fit in the rest of the 1 MiB.
    std::thread::sleep(Duration::from_millis(
        2 * classalloc_slab::pages::DECAY_MS + 10,
    ));
    std::thread::spawn(|| fill_and_free(&[100_000], 100_000))
        .join()
        .unwrap();
    let decayed = anonymous_bytes();
    eprintln!("after the decay: {}", above(decayed, baseline));
    assert!(
        decayed <= baseline + MIB + baseline / 100,
        "{}",
        above(decayed, baseline)
    );

    // This thread's own cache holds what it freed until it exits, or until `collect`.
    fill_and_free(&[32, 700], 8 * MIB);
    classalloc::collect();
    let collected = anonymous_bytes();
    eprintln!("after collect: {}", above(collected, baseline));
    assert!(
        collected <= baseline + MIB + baseline / 100,
        "{}",
        above(collected, baseline)
    );
}
