//! The seed-004 driver: a command loop over a [`PageHeap`], reading commands from any reader so it can be
//! scripted (`examples/shell.rs` wires it to stdin and stdout).

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};
use std::ptr::NonNull;

use crate::pages::PageHeap;
use crate::visual;

/// The help text.
pub const HELP: &str = "\
commands:
  alloc <order>   allocate 2^order pages; prints an id
  free <id>       free the block with that id
  show            draw the memory map and the blocks of every order
  stats           page counts and free blocks per order
  help            this text
  quit            leave (end of input also leaves)
lines starting with '#' are comments
";

/// The state of one shell session: the heap and the blocks it handed out, by id.
#[derive(Debug)]
pub struct Shell {
    heap: PageHeap,
    live: BTreeMap<usize, (NonNull<u8>, u32)>,
    next_id: usize,
}

/// Whether the loop goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Quit,
}

impl Shell {
    /// A shell over `heap`.
    pub fn new(heap: PageHeap) -> Self {
        Self {
            heap,
            live: BTreeMap::new(),
            next_id: 1,
        }
    }

    /// The heap, for inspection.
    pub fn heap(&self) -> &PageHeap {
        &self.heap
    }

    /// Reads commands line by line from `input` until `quit` or end of input, writing replies to `output`.
    pub fn run(&mut self, input: impl BufRead, output: &mut impl Write) -> io::Result<()> {
        for line in input.lines() {
            let line = line?;
            if self.execute(line.trim(), output)? == Flow::Quit {
                break;
            }
        }
        Ok(())
    }

    fn execute(&mut self, line: &str, out: &mut impl Write) -> io::Result<Flow> {
        let mut words = line.split_whitespace();
        let Some(command) = words.next().filter(|w| !w.starts_with('#')) else {
            return Ok(Flow::Continue);
        };
        let argument = words.next();
        if words.next().is_some() {
            writeln!(out, "error: too many arguments to `{command}`")?;
            return Ok(Flow::Continue);
        }
        match (command, argument) {
            ("alloc", Some(order)) => self.alloc(order, out)?,
            ("free", Some(id)) => self.free(id, out)?,
            ("show", None) => write!(out, "{}", visual::draw(&self.heap))?,
            ("stats", None) => self.stats(out)?,
            ("help", None) => write!(out, "{HELP}")?,
            ("quit" | "exit", None) => {
                writeln!(out, "bye")?;
                return Ok(Flow::Quit);
            }
            ("alloc" | "free", None) => writeln!(out, "error: `{command}` needs an argument")?,
            ("show" | "stats" | "help" | "quit" | "exit", Some(_)) => {
                writeln!(out, "error: `{command}` takes no argument")?
            }
            _ => writeln!(out, "error: unknown command `{command}` (try `help`)")?,
        }
        Ok(Flow::Continue)
    }

    fn alloc(&mut self, order: &str, out: &mut impl Write) -> io::Result<()> {
        let Ok(order) = order.parse::<u32>() else {
            return writeln!(out, "error: `{order}` is not an order");
        };
        match self.heap.alloc_pages(order) {
            Ok(block) => {
                let id = self.next_id;
                self.next_id += 1;
                self.live.insert(id, (block, order));
                let (chunk, page) = self.locate(block);
                writeln!(
                    out,
                    "#{id}: {} page(s) at chunk {chunk} page {page}",
                    1usize << order
                )
            }
            Err(error) => writeln!(out, "error: alloc {order}: {error}"),
        }
    }

    fn free(&mut self, id: &str, out: &mut impl Write) -> io::Result<()> {
        let Some(id) = id.trim_start_matches('#').parse::<usize>().ok() else {
            return writeln!(out, "error: `{id}` is not an id");
        };
        let Some(&(block, order)) = self.live.get(&id) else {
            return writeln!(out, "error: no live block #{id}");
        };
        match self.heap.free_pages(block, order) {
            Ok(()) => {
                self.live.remove(&id);
                writeln!(out, "freed #{id}")
            }
            Err(error) => writeln!(out, "error: free #{id}: {error}"),
        }
    }

    fn stats(&self, out: &mut impl Write) -> io::Result<()> {
        let stats = self.heap.stats();
        writeln!(
            out,
            "chunks {}, pages {}, allocated {}, free {}",
            stats.chunks, stats.total_pages, stats.allocated_pages, stats.free_pages
        )?;
        for (order, count) in self.heap.free_blocks_per_order().iter().enumerate() {
            writeln!(out, "  order {order:>2}: {count} free block(s)")?;
        }
        Ok(())
    }

    /// Chunk index and page number of a block, for addresses that read the same in every run.
    fn locate(&self, block: NonNull<u8>) -> (usize, usize) {
        let addr = block.as_ptr() as usize;
        let bases = self.heap.chunk_bases();
        let chunk = bases.partition_point(|&base| base <= addr) - 1;
        (chunk, (addr - bases[chunk]) / self.heap.page_size())
    }
}
