//! Liveness as progress: when the job last moved a byte, in or out.
//!
//! A heartbeat says the process is alive; it does not say the work moves. A job
//! wedged on a transfer, or waiting on something that never comes, keeps beating
//! and keeps its task (and its bill) alive until the state's timeout. The worker
//! counts the bytes the job reads and the bytes the upload takes, and gives up when
//! none moved for the configured time.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, ReadBuf};

#[derive(Clone, Debug)]
pub struct Progress {
    started: Instant,
    /// Milliseconds after `started` of the last byte moved.
    last_ms: Arc<AtomicU64>,
    /// Bytes read by the job, and bytes taken by the upload.
    read: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            started: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
            read: Arc::new(AtomicU64::new(0)),
            written: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Progress {
    fn moved(&self, counter: &AtomicU64, n: usize) {
        if n > 0 {
            counter.fetch_add(n as u64, Ordering::Relaxed);
            let now = self.started.elapsed().as_millis() as u64;
            self.last_ms.fetch_max(now, Ordering::Relaxed);
        }
    }

    /// Time since the last byte moved (or since the start).
    pub fn idle(&self) -> Duration {
        let now = self.started.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }

    /// Bytes moved, both ways.
    pub fn bytes(&self) -> u64 {
        self.bytes_read() + self.bytes_written()
    }

    /// Bytes the job read of its input.
    pub fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// Bytes of output the upload took.
    pub fn bytes_written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// `inner` (the input), counting what the job reads through it.
    pub fn reading<R>(&self, inner: R) -> Counted<R> {
        Counted {
            inner,
            progress: self.clone(),
            output: false,
        }
    }

    /// `inner` (the output pipe), counting what the upload reads through it.
    pub fn writing<R>(&self, inner: R) -> Counted<R> {
        Counted {
            inner,
            progress: self.clone(),
            output: true,
        }
    }
}

pub struct Counted<R> {
    inner: R,
    progress: Progress,
    output: bool,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counted<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let counter = if self.output {
                &self.progress.written
            } else {
                &self.progress.read
            };
            self.progress.moved(counter, buf.filled().len() - before);
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn reads_count_as_progress_and_silence_as_idle() {
        let progress = Progress::default();
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(progress.idle() >= Duration::from_millis(30));
        let mut reader = progress.reading(&b"hello"[..]);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).await.unwrap();
        assert_eq!(progress.bytes(), 5);
        let mut writer = progress.writing(&b"out"[..]);
        writer.read_to_end(&mut out).await.unwrap();
        assert_eq!((progress.bytes_read(), progress.bytes_written()), (5, 3));
        assert!(progress.idle() < Duration::from_millis(30));
    }
}
