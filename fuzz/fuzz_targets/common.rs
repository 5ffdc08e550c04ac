//! Helpers shared by the targets (included with `mod common;`).

/// The offset of the first byte of `bytes` that is not `value`. Compares 4 KiB at a time with `==` (a
/// `memcmp`), which is far faster than a byte loop under libFuzzer's comparison tracing.
pub fn first_difference(bytes: &[u8], value: u8) -> Option<usize> {
    let chunk = [value; 4096];
    let mut offset = 0;
    for part in bytes.chunks(chunk.len()) {
        if part != &chunk[..part.len()] {
            return part.iter().position(|&b| b != value).map(|i| offset + i);
        }
        offset += part.len();
    }
    None
}
