//! The mixed-lifetime workload in a fresh process:
//! `lifetimes --alloc NAME [--long N] [--short-per-long K]`, where NAME is an allocator of the suite
//! (`probe --list`) or `classalloc-classes`: classalloc with the long-lived and short-lived objects in two
//! lifetime classes. Prints one `RESULT key=value ...` line.

use std::alloc::{GlobalAlloc, Layout};
use std::process::ExitCode;

use classalloc::{lifetime_class, ClassAlloc};
use classalloc_benches::cli::{print_result, Args};
use classalloc_benches::workloads::lifetimes::{self, Lifetimes};
use classalloc_benches::{with_allocator, Allocator};

#[derive(Clone, Copy, strum::EnumCount, strum::IntoStaticStr)]
#[repr(u8)]
enum Life {
    Long,
    Short,
}
lifetime_class!(Life);

static CLASSES: ClassAlloc<Life> = ClassAlloc::new();

/// One class of [`CLASSES`] behind `GlobalAlloc`.
struct InClass(Life);

// SAFETY: forwards to the class's slab, which returns blocks fitting the layout or null; frees go to
// the same class with the allocation's layout.
unsafe impl GlobalAlloc for InClass {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        CLASSES
            .alloc(self.0, layout)
            .map_or(core::ptr::null_mut(), |block| block.as_ptr().cast())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let ptr = core::ptr::NonNull::new(ptr).expect("non-null");
        // SAFETY: GlobalAlloc's contract: allocated by `alloc` above with `layout`, in this class.
        unsafe { CLASSES.free(self.0, ptr, layout) }.expect("a matching free");
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("lifetimes: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args = Args::from_env()?;
    let name: String = args.required("alloc")?;
    let long: usize = args.optional("long", 1_000_000)?;
    let short_per_long: usize = args.optional("short-per-long", 3)?;
    let measured: Lifetimes = if name == "classalloc-classes" {
        lifetimes::run(
            &InClass(Life::Long),
            &InClass(Life::Short),
            long,
            short_per_long,
            7,
        )
    } else {
        let allocator =
            Allocator::from_name(&name).ok_or_else(|| format!("unknown allocator `{name}`"))?;
        with_allocator!(allocator, alloc => lifetimes::run(alloc, alloc, long, short_per_long, 7))
    }
    .map_err(|error| error.to_string())?;
    print_result(&[
        ("workload", "lifetimes".into()),
        ("alloc", name),
        ("long_bytes", measured.long_bytes.to_string()),
        ("short_bytes", measured.short_bytes.to_string()),
        ("peak_growth", measured.peak_growth.to_string()),
        ("after_growth", measured.after_growth.to_string()),
        ("ratio_after", format!("{:.4}", measured.ratio_after())),
    ]);
    Ok(())
}
