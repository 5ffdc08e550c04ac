//! Aborting with a message, without allocating: the allocator may be the global one, and a misuse it
//! detects must not re-enter it.

use core::fmt::{self, Write};

/// A fixed buffer that keeps what fits of a formatted message.
struct StackBuffer {
    bytes: [u8; 512],
    len: usize,
}

impl Write for StackBuffer {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let room = self.bytes.len() - self.len;
        let take = text.len().min(room);
        self.bytes[self.len..self.len + take].copy_from_slice(&text.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// Writes `classalloc: fatal: <message>` to standard error and aborts the process.
#[cold]
#[inline(never)]
pub fn abort_with(message: fmt::Arguments<'_>) -> ! {
    let mut buffer = StackBuffer {
        bytes: [0; 512],
        len: 0,
    };
    // Writing into StackBuffer cannot fail; a message longer than the buffer is cut.
    let _ = writeln!(buffer, "classalloc: fatal: {message}");
    if buffer.len == buffer.bytes.len() {
        buffer.bytes[buffer.len - 1] = b'\n';
    }
    // SAFETY: writes initialised bytes of a live buffer to fd 2; abort never returns.
    unsafe {
        libc::write(2, buffer.bytes.as_ptr().cast(), buffer.len);
        libc::abort()
    }
}
