//! Differential fuzzing of the buddy core: a `Region` built over an arbitrary slice of a buffer (any start,
//! any length, orders, metadata in place, in a zeroed buffer or in a dirty one) runs a sequence of actions
//! against a model that knows every live block.
//!
//! The model predicts, exactly: whether an allocation succeeds (a buddy with eager merging succeeds iff an
//! aligned free span of the order lies in the usable span), the error of every free (double, wrong order,
//! interior, misaligned, outside the region, foreign), the order `live_order` reads, and the accounting
//! (`allocated_bytes`, `live_blocks`, `largest_free_order`). Every block handed out is naturally aligned,
//! inside the usable span and disjoint from every live block; its contents (a fill byte written at
//! allocation) are intact at free; a refused free changes nothing. When everything is freed, the free blocks
//! are the usable span's canonical decomposition (one block for an aligned power-of-two region) and
//! `available_bytes == managed_bytes`.

#![no_main]

mod common;

use arbitrary::Arbitrary;
use classalloc_buddy::region::MIN_ORDER_FLOOR;
use classalloc_buddy::{Region, RegionFreeError, RegionInitError, RegionStats};
use core::ptr::NonNull;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

/// The most bytes a region spans.
const REGION_MAX: usize = 64 << 10;
/// The region starts up to this many bytes into the buffer (any byte offset).
const OFFSET_MAX: usize = 4096;
/// Orders go up to `min_order + ORDER_SPAN - 1` (above the region's size too: the arena is widened).
const ORDER_SPAN: u8 = 15;
/// Freed blocks remembered as targets of double frees.
const GRAVEYARD: usize = 64;
/// `Region::check_invariants` runs when the region has at most this many free blocks.
const CHECKER_MAX_FREE_BLOCKS: usize = 256;

#[derive(Clone, Copy, Debug, Arbitrary)]
enum Metadata {
    /// `Region::in_place`: carved from the end of the region.
    InPlace,
    /// A separate buffer of zeros, `metadata_zeroed = true`.
    Zeroed,
    /// A separate buffer of garbage, `metadata_zeroed = false` (the region must clear it).
    Dirty,
}

#[derive(Clone, Copy, Debug, Arbitrary)]
struct Setup {
    offset: u16,
    len: u32,
    min_extra: u8,
    span: u8,
    metadata: Metadata,
}

#[derive(Clone, Copy, Debug, Arbitrary)]
enum Request {
    Bytes(u32),
    /// Sizes near `usize::MAX`: no block fits, and the order computation must not overflow.
    Huge(u8),
}

#[derive(Clone, Copy, Debug, Arbitrary)]
enum Align {
    Pow2(u8),
    /// Any value: not a power of two is refused.
    Raw(u16),
}

#[derive(Clone, Copy, Debug, Arbitrary)]
enum FreeHow {
    /// `free(ptr, order)`.
    Order,
    /// `free_unsized(ptr)`.
    Unsized,
    /// `free_bytes(ptr, size, align)` with the request it was allocated for.
    Bytes,
}

/// Where a free that may be invalid points.
#[derive(Clone, Copy, Debug, Arbitrary)]
enum Target {
    /// The start of a live block.
    Live { index: u16 },
    /// Inside a live block.
    Interior { index: u16, offset: u32 },
    /// A block freed earlier (a double free, unless it was handed out again).
    Freed { index: u16 },
    /// Anywhere near the usable span, before, inside or after it.
    Near { offset: i32 },
    /// Memory the region has nothing to do with.
    Foreign,
}

/// The order a free states.
#[derive(Clone, Copy, Debug, Arbitrary)]
enum OrderSpec {
    /// The target block's own order (the region's smallest for targets without one).
    Same,
    Delta(i8),
    Raw(u8),
}

#[derive(Clone, Copy, Debug, Arbitrary)]
enum Action {
    Alloc {
        order: u8,
    },
    AllocBytes {
        size: Request,
        align: Align,
    },
    /// A valid free of a live block.
    Free {
        index: u16,
        how: FreeHow,
    },
    /// `free(ptr, order)` with a pointer and order that may be wrong: the model predicts the outcome.
    FreeAt {
        target: Target,
        order: OrderSpec,
    },
    /// `live_order(ptr)` then `free_unsized(ptr)`, predicted likewise.
    FreeUnsizedAt {
        target: Target,
    },
    Reset,
    /// The region's own invariant checker, and the model's live set against `for_each_block`.
    Check,
}

#[derive(Debug, Arbitrary)]
struct Input {
    setup: Setup,
    actions: Vec<Action>,
}

#[derive(Clone, Copy, Debug)]
struct Block {
    order: u32,
    fill: u8,
    /// The `alloc_bytes` request, if it came from one.
    request: Option<(usize, usize)>,
}

/// `2^order` bytes.
fn size_of_order(order: u32) -> usize {
    1usize << order
}

fn align_up(addr: usize, order: u32) -> usize {
    let mask = size_of_order(order) - 1;
    (addr + mask) & !mask
}

fn align_down(addr: usize, order: u32) -> usize {
    addr & !(size_of_order(order) - 1)
}

struct Model {
    /// The buffer the region lies in; every pointer into it is derived from this one.
    base: *mut u8,
    usable_start: usize,
    usable_end: usize,
    min_order: u32,
    max_order: u32,
    /// Live blocks by address.
    live: BTreeMap<usize, Block>,
    graveyard: Vec<(usize, u32)>,
    fills: u8,
}

impl Model {
    fn ptr(&self, addr: usize) -> NonNull<u8> {
        let ptr = self
            .base
            .wrapping_add(addr.wrapping_sub(self.base as usize));
        NonNull::new(ptr).expect("a target address is never 0")
    }

    fn managed(&self) -> usize {
        self.usable_end - self.usable_start
    }

    fn next_fill(&mut self) -> u8 {
        self.fills = self.fills.wrapping_add(1);
        self.fills % 255 + 1
    }

    /// The live block containing `addr`, as (start, order).
    fn containing(&self, addr: usize) -> Option<(usize, u32)> {
        let (&start, block) = self.live.range(..=addr).next_back()?;
        (addr < start + size_of_order(block.order)).then_some((start, block.order))
    }

    /// The largest order of an aligned block that lies in the usable span and overlaps no live block:
    /// with eager merging, exactly the largest order on the free lists.
    fn largest_free_order(&self) -> Option<u32> {
        let mut best: Option<u32> = None;
        let mut gap_start = self.usable_start;
        let ends = self
            .live
            .iter()
            .map(|(&start, block)| (start, start + size_of_order(block.order)))
            .chain(core::iter::once((self.usable_end, self.usable_end)));
        for (start, end) in ends {
            if start > gap_start {
                let floor = usize::BITS - 1 - (start - gap_start).leading_zeros();
                let mut order = floor.min(self.max_order);
                while order >= self.min_order {
                    if align_up(gap_start, order) + size_of_order(order) <= start {
                        best = best.max(Some(order));
                        break;
                    }
                    order -= 1;
                }
            }
            gap_start = end;
        }
        best
    }

    /// The order `alloc_bytes` / `free_bytes` use for a request, if a block of this region can hold it.
    fn order_for(&self, size: usize, align: usize) -> Option<u32> {
        if !align.is_power_of_two() {
            return None;
        }
        let order = size
            .max(align)
            .checked_next_power_of_two()?
            .trailing_zeros()
            .max(self.min_order);
        (order <= self.max_order).then_some(order)
    }

    /// Why `addr` (in the usable span) starts no live block of the stated order.
    fn diagnose(&self, addr: usize) -> RegionFreeError {
        match self.containing(addr) {
            Some((start, order)) if start == addr => RegionFreeError::WrongOrder { actual: order },
            Some((_, order)) => RegionFreeError::InteriorPointer { order },
            None if addr & (size_of_order(self.min_order) - 1) != 0 => RegionFreeError::Misaligned,
            None => RegionFreeError::NotAllocated,
        }
    }

    fn predict_free(&self, addr: usize, order: u32) -> Result<(), RegionFreeError> {
        if addr < self.usable_start || addr >= self.usable_end {
            return Err(RegionFreeError::OutOfBounds);
        }
        if order < self.min_order || order > self.max_order {
            return Err(RegionFreeError::BadOrder);
        }
        match self.live.get(&addr) {
            Some(block) if block.order == order => Ok(()),
            _ => Err(self.diagnose(addr)),
        }
    }

    fn predict_live_order(&self, addr: usize) -> Result<u32, RegionFreeError> {
        if addr < self.usable_start || addr >= self.usable_end {
            return Err(RegionFreeError::OutOfBounds);
        }
        match self.live.get(&addr) {
            Some(block) => Ok(block.order),
            None => Err(self.diagnose(addr)),
        }
    }

    fn check_contents(&self, addr: usize, block: &Block, what: &dyn Fn() -> String) {
        // SAFETY: the block is live (the model says so, and the region agreed), `2^order` bytes inside the
        // buffer, and written only by this model.
        let bytes = unsafe {
            core::slice::from_raw_parts(self.ptr(addr).as_ptr(), size_of_order(block.order))
        };
        if let Some(offset) = common::first_difference(bytes, block.fill) {
            panic!(
                "{}: byte {offset} of the block at {addr:#x} (order {}) is {:#04x}, written {:#04x}",
                what(),
                block.order,
                bytes[offset],
                block.fill
            );
        }
    }

    /// Checks a block the region just handed out, fills it and records it.
    fn add(
        &mut self,
        addr: usize,
        order: u32,
        request: Option<(usize, usize)>,
        what: &dyn Fn() -> String,
    ) {
        let end = addr + size_of_order(order);
        assert_eq!(
            addr % size_of_order(order),
            0,
            "{}: {addr:#x} not aligned to its size",
            what()
        );
        assert!(
            addr >= self.usable_start && end <= self.usable_end,
            "{}: {addr:#x}..{end:#x} outside the usable span {:#x}..{:#x}",
            what(),
            self.usable_start,
            self.usable_end
        );
        if let Some((start, block)) = self.live.range(..end).next_back() {
            let other_end = start + size_of_order(block.order);
            assert!(
                other_end <= addr,
                "{}: {addr:#x}..{end:#x} overlaps the live {start:#x}..{other_end:#x}",
                what()
            );
        }
        let fill = self.next_fill();
        // SAFETY: the block lies in the usable span, inside the buffer, and overlaps no live block: the
        // region handed it to us.
        unsafe {
            self.ptr(addr)
                .as_ptr()
                .write_bytes(fill, size_of_order(order))
        };
        self.live.insert(
            addr,
            Block {
                order,
                fill,
                request,
            },
        );
    }

    /// Forgets a block the region has just freed.
    fn forget(&mut self, addr: usize) {
        let block = self.live.remove(&addr).expect("forgetting a live block");
        if self.graveyard.len() == GRAVEYARD {
            self.graveyard
                .swap_remove(usize::from(block.fill) % GRAVEYARD);
        }
        self.graveyard.push((addr, block.order));
    }

    fn nth_live(&self, index: u16) -> Option<(usize, Block)> {
        if self.live.is_empty() {
            return None;
        }
        let n = usize::from(index) % self.live.len();
        self.live.iter().nth(n).map(|(&addr, &block)| (addr, block))
    }

    /// The address and the natural order of a target.
    fn target(&self, target: Target) -> Option<(usize, u32)> {
        match target {
            Target::Live { index } => self
                .nth_live(index)
                .map(|(addr, block)| (addr, block.order)),
            Target::Interior { index, offset } => self.nth_live(index).map(|(addr, block)| {
                let size = size_of_order(block.order);
                // Never the start itself when the block has room for another byte.
                let delta = if size > 1 {
                    1 + offset as usize % (size - 1)
                } else {
                    0
                };
                (addr + delta, block.order)
            }),
            Target::Freed { index } => (!self.graveyard.is_empty())
                .then(|| self.graveyard[usize::from(index) % self.graveyard.len()]),
            Target::Near { offset } => {
                let addr = self.usable_start.wrapping_add_signed(offset as isize);
                (addr != 0).then_some((addr, self.min_order))
            }
            Target::Foreign => None,
        }
    }
}

struct Run {
    region: Region,
    model: Model,
    /// A block of memory no region owns, for foreign frees.
    foreign: Box<[u64; 8]>,
}

impl Run {
    fn check_stats(&self, what: &dyn Fn() -> String) {
        let allocated: usize = self
            .model
            .live
            .values()
            .map(|b| size_of_order(b.order))
            .sum();
        let expected = RegionStats {
            managed_bytes: self.model.managed(),
            allocated_bytes: allocated,
            free_bytes: self.model.managed() - allocated,
            live_blocks: self.model.live.len(),
            largest_free_order: self.model.largest_free_order(),
        };
        assert_eq!(
            self.region.stats(),
            expected,
            "{}: stats (region vs model)",
            what()
        );
        assert_eq!(
            self.region.available_bytes(),
            expected.free_bytes,
            "{}",
            what()
        );
        assert_eq!(self.region.allocated_bytes(), allocated, "{}", what());
    }

    fn check_blocks(&self, what: &dyn Fn() -> String) {
        // The region's checker compares every free block with every other: quadratic, so only for regions
        // with few free blocks (the model's comparisons below cover the others).
        let free_blocks: usize = (self.model.min_order..=self.model.max_order)
            .map(|order| self.region.free_block_count(order))
            .sum();
        if free_blocks <= CHECKER_MAX_FREE_BLOCKS {
            if let Err(broken) = self.region.check_invariants() {
                panic!("{}: invariant broken: {broken}", what());
            }
        }
        let mut live = Vec::new();
        let mut free = Vec::new();
        self.region.for_each_block(|block| {
            if block.allocated {
                live.push((block.addr, block.order));
            } else {
                free.push((block.addr, block.order));
            }
        });
        live.sort_unstable();
        let model: Vec<(usize, u32)> = self.model.live.iter().map(|(&a, b)| (a, b.order)).collect();
        assert_eq!(live, model, "{}: live blocks (region vs model)", what());
        if model.is_empty() {
            free.sort_unstable();
            assert_eq!(
                free,
                self.canonical(),
                "{}: free blocks of an empty region",
                what()
            );
        }
    }

    /// The free blocks of an empty region: from the usable start, the largest aligned block that fits.
    fn canonical(&self) -> Vec<(usize, u32)> {
        let model = &self.model;
        let mut blocks = Vec::new();
        let mut addr = model.usable_start;
        while addr < model.usable_end {
            let mut order = model.max_order.min(addr.trailing_zeros());
            while size_of_order(order) > model.usable_end - addr {
                order -= 1;
            }
            blocks.push((addr, order));
            addr += size_of_order(order);
        }
        blocks
    }

    fn alloc(&mut self, order: u8) {
        let order = u32::from(order);
        let what = &|| format!("alloc({order})");
        let want = order.max(self.model.min_order);
        let fits = want <= self.model.max_order
            && self
                .model
                .largest_free_order()
                .is_some_and(|largest| largest >= want);
        match (fits, self.region.alloc(order)) {
            (true, Some(ptr)) => {
                let addr = ptr.as_ptr() as usize;
                assert_eq!(
                    self.region.live_order(ptr),
                    Ok(want),
                    "{}: live_order",
                    what()
                );
                self.model.add(addr, want, None, what);
            }
            (false, None) => {}
            (fits, got) => panic!(
                "{}: the model says fits={fits}, the region gave {got:?}",
                what()
            ),
        }
    }

    fn alloc_bytes(&mut self, size: Request, align: Align) {
        let size = match size {
            Request::Bytes(n) => n as usize,
            Request::Huge(n) => usize::MAX - usize::from(n),
        };
        let align = match align {
            Align::Pow2(shift) => 1usize.checked_shl(u32::from(shift) % 64).unwrap_or(1),
            Align::Raw(n) => usize::from(n),
        };
        let what = &|| format!("alloc_bytes({size}, {align})");
        let want = self.model.order_for(size, align);
        assert_eq!(
            self.region.order_for(size, align),
            want,
            "{}: order_for",
            what()
        );
        let fits = want.is_some_and(|want| {
            self.model
                .largest_free_order()
                .is_some_and(|largest| largest >= want)
        });
        match (fits, self.region.alloc_bytes(size, align)) {
            (true, Some(ptr)) => {
                let want = want.expect("it fits");
                let addr = ptr.as_ptr() as usize;
                assert!(size_of_order(want) >= size, "{}: block too small", what());
                self.model.add(addr, want, Some((size, align)), what);
            }
            (false, None) => {}
            (fits, got) => panic!(
                "{}: the model says fits={fits}, the region gave {got:?}",
                what()
            ),
        }
    }

    fn free(&mut self, index: u16, how: FreeHow) {
        let Some((addr, block)) = self.model.nth_live(index) else {
            return;
        };
        let what = &|| format!("free of {addr:#x} ({block:?}) by {how:?}");
        self.model.check_contents(addr, &block, what);
        let ptr = self.model.ptr(addr);
        let result = match (how, block.request) {
            (FreeHow::Order, _) | (FreeHow::Bytes, None) => self.region.free(ptr, block.order),
            (FreeHow::Unsized, _) => self.region.free_unsized(ptr),
            (FreeHow::Bytes, Some((size, align))) => self.region.free_bytes(ptr, size, align),
        };
        assert_eq!(result, Ok(()), "{}", what());
        self.model.forget(addr);
    }

    /// The address and order a target names, with the pointer to pass.
    fn aim(&self, target: Target) -> (usize, u32, NonNull<u8>) {
        match self.model.target(target) {
            Some((addr, order)) => (addr, order, self.model.ptr(addr)),
            None => {
                let ptr = NonNull::from(&self.foreign[3]).cast::<u8>();
                (ptr.as_ptr() as usize, self.model.min_order, ptr)
            }
        }
    }

    fn free_at(&mut self, target: Target, order: OrderSpec) {
        let (addr, natural, ptr) = self.aim(target);
        let order = match order {
            OrderSpec::Same => natural,
            OrderSpec::Delta(delta) => natural.saturating_add_signed(i32::from(delta)),
            OrderSpec::Raw(order) => u32::from(order),
        };
        let what = &|| format!("free({addr:#x}, {order}) of {target:?}");
        let expect = self.model.predict_free(addr, order);
        if expect.is_ok() {
            let block = self.model.live[&addr];
            self.model.check_contents(addr, &block, what);
        }
        let stats = self.region.stats();
        let got = self.region.free(ptr, order);
        assert_eq!(got, expect, "{}: region vs model", what());
        match got {
            Ok(()) => self.model.forget(addr),
            Err(_) => assert_eq!(
                self.region.stats(),
                stats,
                "{}: a refused free changed the stats",
                what()
            ),
        }
    }

    fn free_unsized_at(&mut self, target: Target) {
        let (addr, _, ptr) = self.aim(target);
        let what = &|| format!("free_unsized({addr:#x}) of {target:?}");
        let expect = self.model.predict_live_order(addr);
        assert_eq!(
            self.region.live_order(ptr),
            expect,
            "{}: live_order, region vs model",
            what()
        );
        if expect.is_ok() {
            let block = self.model.live[&addr];
            self.model.check_contents(addr, &block, what);
        }
        let stats = self.region.stats();
        let got = self.region.free_unsized(ptr);
        assert_eq!(got, expect.map(|_| ()), "{}: region vs model", what());
        match got {
            Ok(()) => self.model.forget(addr),
            Err(_) => assert_eq!(
                self.region.stats(),
                stats,
                "{}: a refused free changed the stats",
                what()
            ),
        }
    }

    fn reset(&mut self) {
        self.region.reset();
        let addrs: Vec<usize> = self.model.live.keys().copied().collect();
        for addr in addrs {
            self.model.forget(addr);
        }
    }

    fn apply(&mut self, action: Action) {
        match action {
            Action::Alloc { order } => self.alloc(order),
            Action::AllocBytes { size, align } => self.alloc_bytes(size, align),
            Action::Free { index, how } => self.free(index, how),
            Action::FreeAt { target, order } => self.free_at(target, order),
            Action::FreeUnsizedAt { target } => self.free_unsized_at(target),
            Action::Reset => self.reset(),
            Action::Check => self.check_blocks(&|| "check".into()),
        }
    }
}

/// The region's geometry as the model derives it, or the error construction must give.
fn expected_span(
    start: usize,
    len: usize,
    min_order: u32,
    max_order: u32,
    metadata: Metadata,
) -> Result<(usize, usize), RegionInitError> {
    let mut end = start + len;
    if let Metadata::InPlace = metadata {
        let words = Region::metadata_words(start, len, min_order, max_order)?;
        end = match end.checked_sub(words * 8).map(|m| m & !7) {
            Some(meta_start) if meta_start >= start => meta_start,
            _ => return Err(RegionInitError::TooSmall),
        };
    }
    let usable_start = align_up(start, min_order);
    let usable_end = align_down(end, min_order);
    if usable_start >= usable_end {
        return Err(RegionInitError::TooSmall);
    }
    Ok((usable_start, usable_end))
}

fuzz_target!(|input: Input| {
    let Setup {
        offset,
        len,
        min_extra,
        span,
        metadata,
    } = input.setup;
    let min_order = MIN_ORDER_FLOOR + u32::from(min_extra % 5);
    let max_order = min_order + u32::from(span % ORDER_SPAN);
    let offset = usize::from(offset) % OFFSET_MAX;
    let len = len as usize % (REGION_MAX + 1);

    let mut buffer = vec![0u64; (OFFSET_MAX + REGION_MAX) / 8 + 1];
    let base = buffer.as_mut_ptr().cast::<u8>();
    let start = base.wrapping_add(offset);
    let start_addr = start as usize;
    let what = || format!("{:?}", input.setup);

    let expect = expected_span(start_addr, len, min_order, max_order, metadata);
    let mut meta: Vec<u64> = Vec::new();
    let start = NonNull::new(start).expect("a buffer is not at 0");
    let built = match metadata {
        // SAFETY: `start..start + len` lies in `buffer`, which outlives the region and is used only through it
        // (and through the blocks it hands out).
        Metadata::InPlace => unsafe { Region::in_place(start, len, min_order, max_order) },
        Metadata::Zeroed | Metadata::Dirty => {
            let dirty = matches!(metadata, Metadata::Dirty);
            let words = match Region::metadata_words(start_addr, len, min_order, max_order) {
                Ok(words) => words,
                Err(error) => {
                    assert_eq!(Err(error), expect, "{}: metadata_words", what());
                    return;
                }
            };
            meta = vec![if dirty { 0xa5a5_a5a5_a5a5_a5a5 } else { 0 }; words];
            // SAFETY: as above for the region; `meta` is a separate buffer of `words` aligned words that
            // outlives the region, and all zero unless `dirty`, in which case the region clears it.
            unsafe {
                Region::with_metadata(
                    start,
                    len,
                    min_order,
                    max_order,
                    NonNull::new(meta.as_mut_ptr()).expect("a Vec's pointer is not null"),
                    words,
                    !dirty,
                )
            }
        }
    };
    let region = match (built, expect) {
        (Ok(region), Ok((usable_start, usable_end))) => {
            assert_eq!(
                (region.usable_start(), region.usable_end()),
                (usable_start, usable_end),
                "{}: usable span",
                what()
            );
            assert_eq!(
                (region.min_order(), region.max_order()),
                (min_order, max_order)
            );
            region
        }
        (Err(got), Err(expect)) if got == expect => return,
        (got, expect) => panic!("{}: built {got:?}, the model expected {expect:?}", what()),
    };
    let model = Model {
        base,
        usable_start: region.usable_start(),
        usable_end: region.usable_end(),
        min_order,
        max_order,
        live: BTreeMap::new(),
        graveyard: Vec::new(),
        fills: 0,
    };
    let mut run = Run {
        region,
        model,
        foreign: Box::new([0; 8]),
    };
    run.check_stats(&what);
    run.check_blocks(&what);
    for (step, action) in input.actions.iter().enumerate() {
        run.apply(*action);
        run.check_stats(&|| format!("{}, after step {step} ({action:?})", what()));
    }
    // Free everything left, checking contents: the region must be whole again.
    while !run.model.live.is_empty() {
        run.free(0, FreeHow::Order);
    }
    run.check_stats(&|| format!("{}, all freed", what()));
    run.check_blocks(&|| format!("{}, all freed", what()));
    assert_eq!(run.region.available_bytes(), run.region.managed_bytes());
    run.region.unpoison_all();
    drop(run);
    drop(meta);
    drop(buffer);
});
