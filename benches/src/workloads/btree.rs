//! Workload g, btree: real Rust work through the global allocator. Builds a `BTreeMap<String,
//! Vec<u8>>` of many entries (keys of 8 to 40 bytes, values of 0 to 256 bytes), looks every key up,
//! and drops the map; several rounds.

use std::collections::BTreeMap;
use std::hint::black_box;

use crate::prng::SplitMix64;

/// Builds and drops a map of `entries` entries, `rounds` times; returns a checksum of the contents so
/// that no work can be optimised away.
pub fn run(entries: usize, rounds: usize) -> u64 {
    let mut checksum = 0u64;
    for round in 0..rounds {
        let mut rng = SplitMix64::new(round as u64 + 5);
        let mut map: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut keys = Vec::with_capacity(entries);
        for _ in 0..entries {
            let key_len = rng.between(8, 40);
            let key: String = (0..key_len)
                .map(|_| char::from(b'a' + rng.below(26) as u8))
                .collect();
            let value = vec![rng.below(256) as u8; rng.below(257)];
            keys.push(key.clone());
            map.insert(key, value);
        }
        for key in &keys {
            if let Some(value) = map.get(key) {
                checksum = checksum.wrapping_add(value.len() as u64);
            }
        }
        checksum = checksum.wrapping_add(map.len() as u64);
        drop(black_box(map));
    }
    checksum
}
