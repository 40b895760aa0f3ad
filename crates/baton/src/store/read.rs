//! Reads of one object: `head` pins a user's object; `open` fetches byte ranges in
//! parallel within the read budget, each pinned by `If-Match` and version to the
//! object the first came from and resumed from its last byte when it stalls or
//! breaks, and hands them over in order under a [`VerifiedReader`].

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncRead, ReadBuf};

use super::Store;
use super::budget::ranges_in_flight;
use super::verify::VerifiedReader;
use crate::error::{Error, display_chain};
use crate::payload::S3Pointer;

impl Store {
    /// Pin a user's object: its size, ETag and version as S3 reports them now.
    pub async fn head(&self, bucket: &str, key: &str) -> Result<S3Pointer, Error> {
        let out = self
            .s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| match status_of(&e) {
                Some(404) => Error::InputIntegrity(format!("no object at s3://{bucket}/{key}")),
                Some(403) => Error::InputIntegrity(unreadable(&format!("s3://{bucket}/{key}"))),
                _ => Error::service("s3", "HeadObject", e),
            })?;
        let size = out.content_length.unwrap_or(0);
        Ok(S3Pointer {
            bucket: bucket.into(),
            key: key.into(),
            size: u64::try_from(size).unwrap_or(0),
            sha256: None,
            etag: out.e_tag,
            version_id: out.version_id,
            content_type: out.content_type,
        })
    }

    /// Open the object a pointer names, as a stream that fails with
    /// `Baton.InputIntegrity` when the bytes are not the ones the pointer describes.
    ///
    /// The first range is fetched here, so a missing, unreadable or changed object
    /// fails at once; it also pins the object (its ETag and version) for every range
    /// after it. The rest is fetched in parallel, within the read budget, while the
    /// reader reads.
    pub async fn open(&self, pointer: &S3Pointer) -> Result<VerifiedReader, Error> {
        pointer.validate()?;
        let uri = pointer.uri();
        let size = pointer.size;
        let range = self.range_bytes as u64;
        // An empty object has no byte range to ask for: one plain GET.
        let first_end = size.min(range);
        let mut request = self
            .s3
            .get_object()
            .bucket(&pointer.bucket)
            .key(&pointer.key)
            .set_if_match(pointer.etag.clone())
            .set_version_id(pointer.version_id.clone());
        if size > 0 {
            request = request.range(format!("bytes=0-{}", first_end - 1));
        }
        let out = request.send().await.map_err(|e| {
            let missing = e.as_service_error().is_some_and(|s| s.is_no_such_key());
            match status_of(&e) {
                _ if missing => Error::InputIntegrity(format!("no object at {uri}")),
                Some(404) => Error::InputIntegrity(format!("no object at {uri}")),
                Some(403) => Error::InputIntegrity(unreadable(&uri)),
                Some(412) => Error::InputIntegrity(format!(
                    "{uri} changed since it was pinned (ETag {} no longer matches)",
                    pointer.etag.as_deref().unwrap_or("?")
                )),
                // A range past the end: the object is empty, the pointer says not.
                Some(416) => {
                    Error::InputIntegrity(format!("{uri} has 0 bytes, the pointer says {size}"))
                }
                _ => Error::service("s3", "GetObject", e),
            }
        })?;
        // The object's whole length: Content-Range's total for a ranged answer.
        let total = out
            .content_range
            .as_deref()
            .and_then(|r| r.rsplit('/').next())
            .and_then(|t| t.parse::<u64>().ok())
            .or_else(|| out.content_length.and_then(|l| u64::try_from(l).ok()));
        if let Some(total) = total
            && total != size
        {
            return Err(Error::InputIntegrity(format!(
                "{uri} has {total} bytes, the pointer says {size}"
            )));
        }
        // Every later range is pinned to the object this first answer came from.
        let pin = Arc::new(RangePin {
            s3: self.s3.clone(),
            bucket: pointer.bucket.clone(),
            key: pointer.key.clone(),
            etag: out.e_tag.clone().or_else(|| pointer.etag.clone()),
            version_id: out
                .version_id
                .clone()
                .or_else(|| pointer.version_id.clone()),
            uri: uri.clone(),
            idle: self.read_idle,
            max_resumes: self.max_resumes,
        });
        let body = RangedBody::new(
            pin,
            out.body,
            size,
            range,
            ranges_in_flight(self.memory.read, self.range_bytes),
        );
        Ok(VerifiedReader::new(
            Box::new(body),
            uri,
            Some(size),
            pointer.sha256.clone(),
        ))
    }
}

/// S3 answers 403, not 404, for a key that does not exist when the caller may not
/// list the bucket (GetObject and HeadObject, "Permissions"). Either way the input
/// cannot be read and retrying will not change that: an integrity failure, never a
/// retried service error.
fn unreadable(uri: &str) -> String {
    format!(
        "no readable object at {uri}: S3 answered 403 AccessDenied, which it also answers for a \
         missing key to a caller without s3:ListBucket on the bucket"
    )
}

fn status_of<E, R>(err: &SdkError<E, R>) -> Option<u16>
where
    R: HasStatus,
{
    err.raw_response().map(HasStatus::status_code)
}

trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// Where every range of one read goes: the same object, pinned by ETag and
/// version, with the read's stall and resume limits.
struct RangePin {
    s3: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    etag: Option<String>,
    version_id: Option<String>,
    uri: String,
    idle: std::time::Duration,
    max_resumes: u32,
}

impl RangePin {
    /// `GetObject` of bytes `start..end`, pinned to the same object.
    async fn get(&self, start: u64, end: u64) -> Result<ByteStream, Error> {
        let out = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .range(format!("bytes={start}-{}", end - 1))
            .set_if_match(self.etag.clone())
            .set_version_id(self.version_id.clone())
            .send()
            .await
            .map_err(|e| match status_of(&e) {
                Some(412) => Error::InputIntegrity(format!(
                    "{} changed while it was read (ETag {} no longer matches)",
                    self.uri,
                    self.etag.as_deref().unwrap_or("?")
                )),
                Some(404) => {
                    Error::InputIntegrity(format!("{} vanished while it was read", self.uri))
                }
                Some(403) => Error::InputIntegrity(unreadable(&self.uri)),
                Some(416) => Error::InputIntegrity(format!(
                    "{} is shorter than it was when the read began",
                    self.uri
                )),
                _ => Error::service("s3", "GetObject", e),
            })?;
        Ok(out.body)
    }

    /// Bytes `start..end` into one buffer of exactly that size. The SDK retries a
    /// `GetObject` only until its response headers arrive; a body that stalls (no
    /// byte for `idle`), breaks, or ends early is the reader's to handle: the range
    /// is asked for again from its last byte received, at most `max_resumes` times.
    async fn fetch(&self, start: u64, end: u64, body: Option<ByteStream>) -> Result<Bytes, Error> {
        let mut buffer = Vec::with_capacity((end - start) as usize);
        let mut resumes = 0u32;
        let mut body = body;
        loop {
            let offset = start + buffer.len() as u64;
            let broke = match body.take() {
                None => match self.get(offset, end).await {
                    Ok(next) => {
                        body = Some(next);
                        continue;
                    }
                    Err(e @ Error::InputIntegrity(_)) => return Err(e),
                    Err(e) => e.to_string(),
                },
                Some(mut stream) => loop {
                    match tokio::time::timeout(self.idle, stream.next()).await {
                        Ok(Some(Ok(chunk))) => {
                            if buffer.len() + chunk.len() > buffer.capacity() {
                                return Err(Error::InputIntegrity(format!(
                                    "{}: the range from byte {start} brought more than its {} bytes",
                                    self.uri,
                                    end - start
                                )));
                            }
                            buffer.extend_from_slice(&chunk);
                        }
                        Ok(None) if buffer.len() as u64 == end - start => {
                            return Ok(Bytes::from(buffer));
                        }
                        Ok(None) => break "the body ended early".to_string(),
                        Ok(Some(Err(e))) => break display_chain(&e),
                        Err(_) => break format!("no byte for {} s", self.idle.as_secs_f64()),
                    }
                },
            };
            let offset = start + buffer.len() as u64;
            if resumes == self.max_resumes {
                return Err(Error::Service {
                    service: "s3",
                    operation: "GetObject",
                    message: format!(
                        "{}: the range from byte {start} broke off {} times, last at byte {offset} ({broke})",
                        self.uri,
                        resumes + 1
                    ),
                });
            }
            resumes += 1;
            tracing::warn!(object = %self.uri, offset, end, resumes, reason = %broke, "read broke off; resuming the range from the last byte received");
            tokio::time::sleep(std::time::Duration::from_millis(100 << resumes.min(6))).await;
        }
    }
}

/// A spawned range fetch, aborted when dropped (when the reader is dropped or
/// fails, nothing keeps downloading).
struct RangeTask(tokio::task::JoinHandle<Result<Bytes, Error>>);

impl Drop for RangeTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Future for RangeTask {
    type Output = Result<Bytes, Error>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|joined| match joined {
            Ok(result) => result,
            Err(join) => Err(Error::Service {
                service: "s3",
                operation: "GetObject",
                message: format!("range task ended abnormally: {join}"),
            }),
        })
    }
}

type RangeStream = Pin<Box<dyn futures::Stream<Item = Result<Bytes, Error>> + Send>>;

/// The object's bytes in order, fetched as ranges `in_flight` at a time.
///
/// Each range is its own task (so fetches progress on every core while the reader
/// is busy) and holds one buffer of at most the range size; `buffered` keeps at
/// most `in_flight` of them, and starts the next only when the reader has taken
/// one. So memory is at most `(in_flight + 1) × range` whatever the object's size.
struct RangedBody {
    ranges: RangeStream,
    current: Bytes,
    failed: bool,
}

impl RangedBody {
    fn new(
        pin: Arc<RangePin>,
        first: ByteStream,
        size: u64,
        range: u64,
        in_flight: usize,
    ) -> RangedBody {
        let mut first = Some(first);
        let starts = (0..size).step_by(range.max(1) as usize);
        let ranges = futures::stream::iter(starts)
            .map(move |start| {
                let pin = pin.clone();
                let body = first.take();
                let end = (start + range).min(size);
                RangeTask(tokio::spawn(
                    async move { pin.fetch(start, end, body).await },
                ))
            })
            .buffered(in_flight.max(1));
        RangedBody {
            ranges: Box::pin(ranges),
            current: Bytes::new(),
            failed: false,
        }
    }
}

impl AsyncRead for RangedBody {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.current.is_empty() {
            if self.failed {
                return Poll::Ready(Ok(()));
            }
            match self.ranges.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => self.current = bytes,
                Poll::Ready(Some(Err(e))) => {
                    self.failed = true;
                    return Poll::Ready(Err(io::Error::other(e)));
                }
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = self.current.len().min(buf.remaining());
        let chunk = self.current.split_to(n);
        buf.put_slice(&chunk);
        Poll::Ready(Ok(()))
    }
}
