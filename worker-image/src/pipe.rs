//! A bounded in-memory pipe from the job (writer) to the S3 upload (reader).
//!
//! End of stream counts only when the job said it finished: if the job fails or is
//! cancelled and drops its writer, the reader reports an error instead of EOF, so
//! the upload is aborted and no partial output ever becomes visible.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};

pub struct PipeWriter {
    inner: DuplexStream,
    finished: Arc<AtomicBool>,
}

pub struct PipeReader {
    inner: DuplexStream,
    finished: Arc<AtomicBool>,
}

/// A pipe holding at most `capacity` bytes in flight.
pub fn pipe(capacity: usize) -> (PipeWriter, PipeReader) {
    let (w, r) = tokio::io::duplex(capacity);
    let finished = Arc::new(AtomicBool::new(false));
    (
        PipeWriter {
            inner: w,
            finished: finished.clone(),
        },
        PipeReader { inner: r, finished },
    )
}

impl PipeWriter {
    /// The output is complete: let the reader see end of stream.
    pub async fn finish(mut self) -> io::Result<()> {
        self.finished.store(true, Ordering::SeqCst);
        self.inner.shutdown().await
    }
}

impl AsyncWrite for PipeWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Only `finish` ends the stream; a job's own shutdown is a flush.
        Pin::new(&mut self.inner).poll_flush(cx)
    }
}

impl AsyncRead for PipeReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let room = buf.remaining() > 0;
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(()))
                if room
                    && buf.filled().len() == before
                    && !self.finished.load(Ordering::SeqCst) =>
            {
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the job stopped before finishing its output",
                )))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn finished_output_reads_to_the_end() {
        let (mut w, mut r) = pipe(16);
        let writer = tokio::spawn(async move {
            w.write_all(b"hello, world and more than sixteen bytes")
                .await
                .unwrap();
            w.finish().await.unwrap();
        });
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.unwrap();
        writer.await.unwrap();
        assert_eq!(out, b"hello, world and more than sixteen bytes");
    }

    #[tokio::test]
    async fn a_dropped_writer_is_an_error_not_eof() {
        let (mut w, mut r) = pipe(64);
        w.write_all(b"partial").await.unwrap();
        w.shutdown().await.unwrap();
        drop(w);
        let mut out = Vec::new();
        let err = r.read_to_end(&mut out).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
