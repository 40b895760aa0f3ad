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
    bytes: Arc<AtomicU64>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            started: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
            bytes: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Progress {
    pub fn moved(&self, n: usize) {
        if n > 0 {
            self.bytes.fetch_add(n as u64, Ordering::Relaxed);
            let now = self.started.elapsed().as_millis() as u64;
            self.last_ms.fetch_max(now, Ordering::Relaxed);
        }
    }

    /// Time since the last byte moved (or since the start).
    pub fn idle(&self) -> Duration {
        let now = self.started.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// `inner`, counting what is read through it.
    pub fn count<R>(&self, inner: R) -> Counted<R> {
        Counted {
            inner,
            progress: self.clone(),
        }
    }
}

pub struct Counted<R> {
    inner: R,
    progress: Progress,
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
            self.progress.moved(buf.filled().len() - before);
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
        let mut reader = progress.count(&b"hello"[..]);
        let mut out = Vec::new();
        reader.read_to_end(&mut out).await.unwrap();
        assert_eq!(progress.bytes(), 5);
        assert!(progress.idle() < Duration::from_millis(30));
    }
}
