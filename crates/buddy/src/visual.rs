//! Text drawings of a [`PageHeap`]: a memory map per chunk and, for small chunks, one row per order showing which
//! blocks of that order are free or allocated.

use std::fmt::Write as _;
use std::string::String;
use std::vec;

use crate::pages::PageHeap;

/// Chunks wider than this many pages get only the combined map, scaled down.
pub const MAX_ROW_PAGES: usize = 128;

/// Draws every chunk of `heap`.
///
/// In the map, `#` is an allocated page and `.` a free one. In the order rows, a block of order `k` spans `2^k`
/// cells: an allocated block is drawn `A###`, a free one `F...`; an order with no block is left blank.
pub fn draw(heap: &PageHeap) -> String {
    let mut out = String::new();
    let pages_per_chunk = 1usize << heap.max_order();
    let page_size = heap.page_size();
    let bases = heap.chunk_bases();
    if bases.is_empty() {
        out.push_str("(no chunk mapped yet)\n");
        return out;
    }
    let blocks = heap.blocks();
    for (index, &base) in bases.iter().enumerate() {
        // Rows indexed by order (in pages), each a cell per page.
        let mut rows = vec![vec![' '; pages_per_chunk]; heap.max_order() as usize + 1];
        let mut map = vec!['?'; pages_per_chunk];
        for (_, block) in blocks.iter().filter(|(chunk, _)| *chunk == index) {
            let first = (block.addr - base) / page_size;
            let pages = 1usize << block.order;
            let (head, body) = if block.allocated {
                ('A', '#')
            } else {
                ('F', '.')
            };
            let row = &mut rows[block.order as usize];
            row[first] = head;
            for cell in &mut row[first + 1..first + pages] {
                *cell = body;
            }
            for cell in &mut map[first..first + pages] {
                *cell = body;
            }
        }
        let _ = writeln!(
            out,
            "chunk {index} at {base:#x}: {pages_per_chunk} pages of {page_size} B"
        );
        if pages_per_chunk <= MAX_ROW_PAGES {
            for order in (0..=heap.max_order()).rev() {
                let row: String = rows[order as usize].iter().collect();
                let _ = writeln!(out, "  order {order:>2} |{row}|");
            }
            let map: String = map.iter().collect();
            let _ = writeln!(out, "  map      |{map}|");
        } else {
            let scale = pages_per_chunk.div_ceil(MAX_ROW_PAGES);
            // A scaled cell shows `#` if any page in it is allocated, `.` if all are free.
            let scaled: String = map
                .chunks(scale)
                .map(|cells| if cells.contains(&'#') { '#' } else { '.' })
                .collect();
            let _ = writeln!(out, "  map (1 cell = {scale} pages) |{scaled}|");
        }
    }
    out
}
