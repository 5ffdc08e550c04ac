//! A request loop with lifetime classes: per-request objects in one class, a long-lived cache in another,
//! everything else in the default class. Run with `cargo run --release -p classalloc --example request_loop`.
//!
//! Each request parses a small document into per-request buffers (typed handles on `Request`), keeps
//! a summary in the cache (`Cache`), and lets code it does not control (`format!`) allocate inside a
//! `with_class(Request, ..)` scope. Because request objects never share blocks with the cache, the
//! `Request` class empties completely between requests and its memory goes back to the OS.

use allocator_api2::vec::Vec as ApiVec;
use classalloc::{lifetime_class, with_class, ClassAlloc, ClassHandle};

/// The long-lived cache: request id -> sum of its values, allocated in `Cache`.
type Cache =
    hashbrown::HashMap<u64, u64, hashbrown::DefaultHashBuilder, ClassHandle<'static, Life>>;

#[derive(Clone, Copy, Debug, strum::EnumCount, strum::IntoStaticStr)]
#[repr(u8)]
enum Life {
    General,
    Request,
    Cache,
}
lifetime_class!(Life);

#[global_allocator]
static ALLOC: ClassAlloc<Life> = ClassAlloc::new();

/// One incoming request's body: `count` records of `key=value` pairs.
fn request_body(id: u64, count: usize) -> String {
    (0..count)
        .map(|i| format!("key{}={};", (id * 31 + i as u64) % 5000, i * 7))
        .collect()
}

fn handle_request(id: u64, body: &str, cache: &mut Cache) -> usize {
    let request = ALLOC.handle(Life::Request);
    // Per-request structures: parsed fields and a scratch buffer.
    let mut fields: ApiVec<(&str, u64), _> = ApiVec::new_in(request);
    let mut scratch: ApiVec<u8, _> = ApiVec::with_capacity_in(body.len(), request);
    for record in body.split(';').filter(|r| !r.is_empty()) {
        let (key, value) = record.split_once('=').expect("key=value");
        fields.push((key, value.parse().expect("a number")));
        scratch.extend_from_slice(key.as_bytes());
    }
    // Code we do not control allocates in the request's class too.
    let rendered = with_class(Life::Request, || {
        fields
            .iter()
            .map(|(key, value)| format!("{key}:{value}"))
            .collect::<Vec<_>>()
            .join(",")
    });
    // The long-lived part: a summary per request.
    let sum: u64 = fields.iter().map(|&(_, value)| value).sum();
    cache.insert(id, sum);
    rendered.len() + scratch.len()
}

fn main() {
    ALLOC.set_default_class(Life::General);
    let mut cache: Cache = hashbrown::HashMap::with_hasher_in(
        hashbrown::DefaultHashBuilder::default(),
        ALLOC.handle(Life::Cache),
    );
    let mut output = 0;
    for id in 0..2_000u64 {
        let body = with_class(Life::Request, || request_body(id, 2_000));
        output += handle_request(id, &body, &mut cache);
        drop(body);
        if id % 500 == 499 {
            let request = ALLOC.class_totals(Life::Request);
            let cached = ALLOC.class_totals(Life::Cache);
            println!(
                "after {:>4} requests: Request holds {:>6} live objects, {:>9} resident bytes; \
                 Cache holds {:>6} live objects, {:>9} resident bytes",
                id + 1,
                request.live_objects,
                request.resident_bytes,
                cached.live_objects,
                cached.resident_bytes
            );
        }
    }
    println!(
        "rendered {output} bytes, cached {} summaries\n",
        cache.len()
    );
    println!("{}", ALLOC.report());
}
