//! [`VerifiedReader`]: passes a read's bytes on and checks them against what a
//! pointer says, size and sha256.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, ReadBuf};

use crate::error::Error;

/// An `AsyncRead` that checks the bytes it passes on against a pointer: more bytes
/// than expected fail at once; at end of stream, the size and sha256 must match.
/// A failure is an `io::Error` wrapping [`Error::InputIntegrity`]
/// (recover it with [`crate::error::from_io`]).
///
/// The size is unknown (`None`) only for a manifest that lists stored manifests:
/// their pointers give the size of their JSON, not of the data they list, which is
/// known only once each is loaded. Every entry is then still checked by its own
/// reader, against its own pointer.
pub struct VerifiedReader {
    inner: Box<dyn AsyncRead + Send + Unpin>,
    what: String,
    expected_size: Option<u64>,
    expected_sha256: Option<String>,
    seen: u64,
    hasher: Sha256,
    verified: bool,
}

impl VerifiedReader {
    pub(super) fn new(
        inner: Box<dyn AsyncRead + Send + Unpin>,
        what: String,
        expected_size: Option<u64>,
        expected_sha256: Option<String>,
    ) -> VerifiedReader {
        VerifiedReader {
            inner,
            what,
            expected_size,
            expected_sha256,
            seen: 0,
            hasher: Sha256::new(),
            verified: false,
        }
    }

    /// The number of bytes the source should have; `None` for a manifest that lists
    /// stored manifests (each entry is checked on its own).
    pub fn expected_size(&self) -> Option<u64> {
        self.expected_size
    }

    fn integrity(&self, message: String) -> io::Error {
        io::Error::other(Error::InputIntegrity(format!("{}: {message}", self.what)))
    }

    fn check_end(&mut self) -> io::Result<()> {
        if let Some(expected) = self.expected_size
            && self.seen != expected
        {
            return Err(self.integrity(format!(
                "ended after {} bytes, expected {expected}",
                self.seen
            )));
        }
        if let Some(expected) = &self.expected_sha256 {
            let actual = hex::encode(std::mem::take(&mut self.hasher).finalize());
            if &actual != expected {
                return Err(self.integrity(format!("sha256 is {actual}, expected {expected}")));
            }
        }
        self.verified = true;
        Ok(())
    }
}

impl AsyncRead for VerifiedReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.verified {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => {
                let fresh = buf.filled().len() - before;
                if fresh == 0 {
                    return Poll::Ready(this.check_end());
                }
                this.seen += fresh as u64;
                if let Some(expected) = this.expected_size
                    && this.seen > expected
                {
                    // An erroring read must not hand out bytes.
                    buf.set_filled(before);
                    return Poll::Ready(Err(
                        this.integrity(format!("more than the expected {expected} bytes"))
                    ));
                }
                if this.expected_sha256.is_some() {
                    this.hasher.update(&buf.filled()[before..]);
                }
                Poll::Ready(Ok(()))
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn reader(data: &'static [u8], size: u64, sha: Option<String>) -> VerifiedReader {
        VerifiedReader::new(Box::new(data), "test".into(), Some(size), sha)
    }

    fn sha(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    pub(in crate::store) async fn drain(mut r: VerifiedReader) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        r.read_to_end(&mut out)
            .await
            .map_err(crate::error::from_io)?;
        Ok(out)
    }

    #[tokio::test]
    async fn passes_matching_bytes() {
        let data = b"hello world";
        let out = drain(reader(data, 11, Some(sha(data)))).await.unwrap();
        assert_eq!(out, data);
        assert_eq!(drain(reader(data, 11, None)).await.unwrap(), data);
    }

    #[tokio::test]
    async fn rejects_wrong_size_and_hash() {
        let data = b"hello world";
        for (size, hash) in [(10, None), (12, None), (11, Some(sha(b"other")))] {
            let err = drain(reader(data, size, hash)).await.unwrap_err();
            assert_eq!(err.name(), "Baton.InputIntegrity", "{err}");
        }
    }
}
