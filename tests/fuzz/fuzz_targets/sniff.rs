//! The HTTP/1 framing sniffer on an arbitrary byte stream, read through the
//! public connection wrapper exactly as the listener reads it.
//!
//! Invariants: nothing panics, and the verdicts do not depend on how the
//! stream is split into reads (the whole stream at once, reads of a size the
//! input chooses, one byte at a time).
#![no_main]

use customs::proxy::sniff::{Verdict, Verdicts, sniffed};
use libfuzzer_sys::fuzz_target;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, ReadBuf};

/// Hands out `bytes` in reads of at most `step` bytes.
struct Stream<'a> {
    bytes: &'a [u8],
    step: usize,
}

impl AsyncRead for Stream<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.step.min(self.bytes.len()).min(buf.remaining());
        let (now, later) = self.bytes.split_at(n);
        buf.put_slice(now);
        self.bytes = later;
        Poll::Ready(Ok(()))
    }
}

/// The verdicts of the requests in `bytes` read `step` bytes at a time.
fn verdicts(bytes: &[u8], step: usize) -> Vec<Verdict> {
    let queue = Arc::new(Verdicts::default());
    let mut conn = sniffed(Stream { bytes, step }, queue.clone());
    let mut cx = Context::from_waker(Waker::noop());
    let mut buf = vec![0u8; 8192];
    loop {
        let mut read = ReadBuf::new(&mut buf);
        match Pin::new(&mut conn).poll_read(&mut cx, &mut read) {
            Poll::Ready(Ok(())) if !read.filled().is_empty() => {}
            _ => break,
        }
    }
    // At most one request per line; one more `take` shows the state after.
    let requests = bytes.iter().filter(|&&b| b == b'\n').count().min(1100);
    (0..=requests).map(|_| queue.take()).collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, stream)) = data.split_first() else {
        return;
    };
    let whole = verdicts(stream, usize::MAX);
    assert_eq!(
        verdicts(stream, usize::from(step).max(1)),
        whole,
        "split reads"
    );
    if stream.len() <= 4096 {
        assert_eq!(verdicts(stream, 1), whole, "byte by byte");
    }
});
