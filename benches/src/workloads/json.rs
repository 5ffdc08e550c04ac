//! Workload g, json: real Rust work through the global allocator. Builds a large JSON document of
//! records as a `serde_json::Value`, serialises it, parses the text back, and serialises it again.

use serde_json::{json, Value};

use crate::prng::SplitMix64;

/// Builds a document of `records` records and round-trips it `rounds` times; returns the length of
/// the final text (checked against the first, so a wrong round trip fails the run).
pub fn run(records: usize, rounds: usize) -> Result<usize, String> {
    let mut rng = SplitMix64::new(17);
    let items: Vec<Value> = (0..records)
        .map(|id| {
            let tags: Vec<String> = (0..rng.between(0, 6))
                .map(|tag| format!("tag-{tag}-{}", rng.below(1000)))
                .collect();
            json!({
                "id": id,
                "name": format!("record number {id} of {records}"),
                "score": rng.below(1_000_000) as f64 / 1000.0,
                "active": rng.below(2) == 1,
                "tags": tags,
                "position": { "x": rng.below(10_000), "y": rng.below(10_000), "z": null },
            })
        })
        .collect();
    let document = Value::Array(items);
    let text = serde_json::to_string(&document).map_err(|error| error.to_string())?;
    drop(document);
    let mut length = text.len();
    let mut current = text;
    for _ in 0..rounds {
        let parsed: Value = serde_json::from_str(&current).map_err(|error| error.to_string())?;
        current = serde_json::to_string(&parsed).map_err(|error| error.to_string())?;
        if current.len() != length {
            return Err(format!(
                "round trip changed the text length: {length} -> {}",
                current.len()
            ));
        }
        length = current.len();
    }
    Ok(length)
}
