//! Streaming S3 storage with verification: parallel in both directions, bounded
//! memory in both.
//!
//! S3 serves each connection at a fraction of an instance's bandwidth (about
//! 85-90 MB/s); a client reaches the rest only with many requests at once (AWS's S3
//! performance guidelines). So reads fetch part-sized byte ranges several at a time
//! and hand them to the reader in order; writes keep several multipart parts in
//! flight. Each direction has a budget of bytes ([`TransferMemory`]), not a count of
//! requests: the number in flight follows from the budget and the part size.
//!
//! Reads verify size and sha256 over the whole stream, pin every range to the
//! object the first range came from (ETag with `If-Match`, and its version), and
//! resume a range that stalls or breaks from its last byte. Writes hash as they go
//! and abort the upload on any error, so no partial object ever becomes visible.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::task::JoinSet;

use crate::error::{Error, display_chain};
use crate::limits::{S3_MAX_PART_BYTES, S3_MAX_PARTS, S3_MIN_PART_BYTES};
use crate::payload::{Payload, S3Pointer, inline_bytes};

/// Default size of the first multipart parts.
pub const DEFAULT_PART_BYTES: usize = 8 * 1024 * 1024;
/// Parts of one size before the size doubles. With 8 MiB to start, 10,000 parts hold
/// 7.8 TiB (S3's objects went up to 5 TiB until 2025; its 48.8 TiB maximum now needs
/// every part at 5 GiB, which only an upload that knows its size up front can do),
/// and memory grows only for outputs over 7.8 GiB.
pub const DEFAULT_PARTS_PER_SIZE: usize = 1_000;

/// The size of part `number` (1-based): `first`, doubled every `per_size` parts,
/// never above S3's 5 GiB. A streamed upload does not know its length, so its parts
/// grow as it goes: small outputs keep small buffers, and large ones still fit in
/// S3's 10,000 parts.
pub fn part_size(number: usize, first: usize, per_size: usize) -> usize {
    let doublings = (number.max(1) - 1) / per_size.max(1);
    first
        .saturating_mul(1usize << doublings.min(32))
        .min(S3_MAX_PART_BYTES)
}
/// Default size of the byte ranges a read fetches at once: 8 MiB, the size AWS's
/// guidelines suggest (8-16 MiB), and a multiple of S3's 16 KiB buffers.
pub const DEFAULT_RANGE_BYTES: usize = 8 * 1024 * 1024;
/// Default memory for transfer buffers, both directions together: 160 MiB, half for
/// reading (9 ranges in flight plus the one being read) and half for writing
/// (9 parts uploading plus the one filling). Sized for a 512 MiB-1 GiB task: at
/// S3's ~85 MB/s per connection, 9 connections are ~750 MB/s each way, more than a
/// Fargate task's network gives, and the rest of the task's memory is the job's.
pub const DEFAULT_TRANSFER_MEMORY: usize = 160 * 1024 * 1024;

/// How many bytes of transfer buffers each direction may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferMemory {
    pub read: usize,
    pub write: usize,
}

impl TransferMemory {
    /// `total` split evenly between reading and writing.
    pub fn split(total: usize) -> TransferMemory {
        TransferMemory {
            read: total / 2,
            write: total - total / 2,
        }
    }
}

/// Ranges a read keeps in flight: every buffered range holds up to `range` bytes,
/// one more is the range being read, and at least one is always fetched.
pub fn ranges_in_flight(budget: usize, range: usize) -> usize {
    (budget / range.max(1)).saturating_sub(1).max(1)
}

/// Streams objects to and from S3.
#[derive(Clone, Debug)]
pub struct Store {
    s3: aws_sdk_s3::Client,
    part_bytes: usize,
    range_bytes: usize,
    memory: TransferMemory,
    parts_per_size: usize,
    max_parts: usize,
    read_idle: std::time::Duration,
    max_resumes: u32,
}

/// A read that receives no byte for this long is given up and resumed.
pub const DEFAULT_READ_IDLE: std::time::Duration = std::time::Duration::from_secs(30);
/// Resumed reads per object before the read fails.
pub const DEFAULT_MAX_RESUMES: u32 = 5;

impl Store {
    pub fn new(s3: aws_sdk_s3::Client) -> Store {
        Store {
            s3,
            part_bytes: DEFAULT_PART_BYTES,
            range_bytes: DEFAULT_RANGE_BYTES,
            memory: TransferMemory::split(DEFAULT_TRANSFER_MEMORY),
            parts_per_size: DEFAULT_PARTS_PER_SIZE,
            max_parts: S3_MAX_PARTS,
            read_idle: DEFAULT_READ_IDLE,
            max_resumes: DEFAULT_MAX_RESUMES,
        }
    }

    /// How long a read may go without a byte before it is resumed, and how many
    /// times one object's read is resumed before it fails.
    pub fn with_read_resume(mut self, idle: std::time::Duration, max_resumes: u32) -> Store {
        self.read_idle = idle.max(std::time::Duration::from_millis(10));
        self.max_resumes = max_resumes;
        self
    }

    /// How many parts of one size before the part size doubles (≥ 1), and the most
    /// parts an upload may have (S3's 10,000 unless a test wants the edge cheaply).
    pub fn with_part_growth(mut self, parts_per_size: usize, max_parts: usize) -> Store {
        self.parts_per_size = parts_per_size.max(1);
        self.max_parts = max_parts.clamp(1, S3_MAX_PARTS);
        self
    }

    /// The largest object an upload can write: every part at its size.
    pub fn max_object_bytes(&self) -> u64 {
        (1..=self.max_parts)
            .map(|n| part_size(n, self.part_bytes, self.parts_per_size) as u64)
            .sum()
    }

    /// Set the first part size of uploads (at least 5 MiB, S3's minimum) and the
    /// size of the ranges reads fetch (at least 64 KiB).
    pub fn with_part_sizes(mut self, part_bytes: usize, range_bytes: usize) -> Store {
        self.part_bytes = part_bytes.max(S3_MIN_PART_BYTES);
        self.range_bytes = range_bytes.max(64 * 1024);
        self
    }

    /// Set the memory each direction's buffers may hold. A write always keeps one
    /// part filling and one uploading, and a read one range fetching and one being
    /// read, however small the budget.
    pub fn with_memory(mut self, memory: TransferMemory) -> Store {
        self.memory = memory;
        self
    }

    /// What this store will do, in words, for the log: the budget and what it
    /// allows at the first part size.
    pub fn describe(&self) -> String {
        const MIB: f64 = 1024.0 * 1024.0;
        format!(
            "{:.0} MiB to read: {} ranges of {:.0} MiB in flight; {:.0} MiB to write: {} parts of {:.0} MiB in flight",
            self.memory.read as f64 / MIB,
            ranges_in_flight(self.memory.read, self.range_bytes),
            self.range_bytes as f64 / MIB,
            self.memory.write as f64 / MIB,
            ranges_in_flight(self.memory.write, self.part_bytes),
            self.part_bytes as f64 / MIB,
        )
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.s3
    }

    /// Write everything `reader` yields to `s3://bucket/key` and return a pointer
    /// with its size and sha256. Small bodies (under one part) go in one PutObject.
    pub async fn put<R>(
        &self,
        bucket: &str,
        key: &str,
        mut reader: R,
        content_type: Option<&str>,
    ) -> Result<S3Pointer, Error>
    where
        R: AsyncRead + Unpin,
    {
        let mut hasher = Sha256::new();
        let first = read_part(&mut reader, self.part_bytes).await?;
        if first.len() < self.part_bytes {
            hasher.update(&first);
            let size = first.len() as u64;
            let out = self
                .s3
                .put_object()
                .bucket(bucket)
                .key(key)
                .set_content_type(content_type.map(String::from))
                .body(ByteStream::from(first))
                .send()
                .await
                .map_err(|e| Error::service("s3", "PutObject", e))?;
            return Ok(S3Pointer {
                bucket: bucket.into(),
                key: key.into(),
                size,
                sha256: Some(hex::encode(hasher.finalize())),
                etag: out.e_tag,
                version_id: out.version_id,
                content_type: content_type.map(String::from),
            });
        }

        let created = self
            .s3
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .set_content_type(content_type.map(String::from))
            .send()
            .await
            .map_err(|e| Error::service("s3", "CreateMultipartUpload", e))?;
        let upload_id = created.upload_id.ok_or_else(|| Error::Service {
            service: "s3",
            operation: "CreateMultipartUpload",
            message: "no upload id in the response".into(),
        })?;

        let uploaded = self
            .upload_parts(bucket, key, &upload_id, first, &mut reader, &mut hasher)
            .await;
        let (parts, size) = match uploaded {
            Ok(done) => done,
            Err(err) => {
                self.abort(bucket, key, &upload_id).await;
                return Err(err);
            }
        };
        let completed = self
            .s3
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await;
        let completed = match completed {
            Ok(c) => c,
            Err(e) => {
                self.abort(bucket, key, &upload_id).await;
                return Err(Error::service("s3", "CompleteMultipartUpload", e));
            }
        };
        Ok(S3Pointer {
            bucket: bucket.into(),
            key: key.into(),
            size,
            sha256: Some(hex::encode(hasher.finalize())),
            etag: completed.e_tag,
            version_id: completed.version_id,
            content_type: content_type.map(String::from),
        })
    }

    async fn upload_parts<R>(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        first: Bytes,
        reader: &mut R,
        hasher: &mut Sha256,
    ) -> Result<(Vec<CompletedPart>, u64), Error>
    where
        R: AsyncRead + Unpin,
    {
        // Dropping the JoinSet (on error) cancels the uploads still in flight.
        let mut in_flight: JoinSet<Result<(CompletedPart, usize), Error>> = JoinSet::new();
        let mut bytes_in_flight = 0usize;
        let mut done = Vec::new();
        let mut size = 0u64;
        let mut part = first;
        let mut number = 1i32;
        loop {
            if number as usize > self.max_parts {
                // Checked before this part goes up: nothing more is sent, and the
                // caller aborts the upload.
                return Err(Error::OutputTooLarge(format!(
                    "more than {} bytes, the most {} growing parts hold",
                    self.max_object_bytes(),
                    self.max_parts
                )));
            }
            hasher.update(&part);
            size += part.len() as u64;
            let len = part.len();
            bytes_in_flight += len;
            let request = self
                .s3
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(part));
            in_flight.spawn(async move {
                let out = request
                    .send()
                    .await
                    .map_err(|e| Error::service("s3", "UploadPart", e))?;
                let part = CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag)
                    .build();
                Ok((part, len))
            });
            // The next part fills while these upload: all of it within the budget,
            // and at least one part uploading whatever the budget.
            let next = part_size(number as usize + 1, self.part_bytes, self.parts_per_size);
            while !in_flight.is_empty() && bytes_in_flight + next > self.memory.write {
                let (part, len) = join_next(&mut in_flight).await?;
                bytes_in_flight -= len;
                done.push(part);
            }
            part = read_part(reader, next).await?;
            if part.is_empty() {
                break;
            }
            number += 1;
        }
        while !in_flight.is_empty() {
            done.push(join_next(&mut in_flight).await?.0);
        }
        done.sort_by_key(|p| p.part_number);
        Ok((done, size))
    }

    async fn abort(&self, bucket: &str, key: &str, upload_id: &str) {
        let aborted = self
            .s3
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await;
        if let Err(e) = aborted {
            // The bucket's lifecycle rule for incomplete uploads cleans up after us.
            tracing::warn!(bucket, key, error = %display_chain(&e), "could not abort multipart upload");
        }
    }

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
            size,
            pointer.sha256.clone(),
        ))
    }

    /// A reader over a Payload's bytes: inline data directly, a pointer verified, a
    /// manifest (inline, or stored: a pointer with [`MANIFEST_CONTENT_TYPE`]) as its
    /// entries one after another, each verified when its end is read.
    pub async fn read_payload(&self, payload: &Payload) -> Result<VerifiedReader, Error> {
        match payload {
            Payload::S3(pointer) if payload.is_stored_manifest() => {
                let manifest = self.load_manifest(pointer).await?;
                self.read_manifest(manifest)
            }
            Payload::Manifest(entries) => self.read_manifest(entries.clone()),
            Payload::S3(pointer) => self.open(pointer).await,
            Payload::Inline(value) => {
                let bytes = inline_bytes(value);
                let size = bytes.len() as u64;
                Ok(VerifiedReader::new(
                    Box::new(io::Cursor::new(bytes)),
                    "inline payload".into(),
                    size,
                    None,
                ))
            }
        }
    }
}

impl Store {
    /// The entries of a stored manifest (at most [`MANIFEST_MAX_BYTES`], verified).
    async fn load_manifest(&self, pointer: &S3Pointer) -> Result<Vec<Payload>, Error> {
        if pointer.size > MANIFEST_MAX_BYTES {
            return Err(Error::InvalidInput(format!(
                "{} holds a manifest of {} bytes; at most {MANIFEST_MAX_BYTES}",
                pointer.uri(),
                pointer.size
            )));
        }
        let mut reader = self.open(pointer).await?;
        let mut text = Vec::with_capacity(pointer.size as usize);
        tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut text)
            .await
            .map_err(crate::error::from_io)?;
        let value: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
            Error::InputIntegrity(format!("{} is not a manifest's JSON: {e}", pointer.uri()))
        })?;
        match Payload::from_value(&value)? {
            Some(Payload::Manifest(entries)) => Ok(entries),
            _ => Err(Error::InputIntegrity(format!(
                "{} is marked as a manifest but holds something else",
                pointer.uri()
            ))),
        }
    }

    fn read_manifest(&self, entries: Vec<Payload>) -> Result<VerifiedReader, Error> {
        let size = entries.iter().map(payload_size).sum();
        let count = entries.len();
        let reader = ManifestReader {
            store: self.clone(),
            entries: entries.into(),
            current: None,
            opening: None,
        };
        Ok(VerifiedReader::new(
            Box::new(reader),
            format!("manifest of {count} entries"),
            size,
            None,
        ))
    }
}

/// The largest stored manifest Baton reads (16 MiB: about 60,000 pointers).
pub const MANIFEST_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// The bytes a reader of `payload` gets (a stored manifest: its JSON's size).
pub fn payload_size(payload: &Payload) -> u64 {
    match payload {
        Payload::Inline(value) => inline_bytes(value).len() as u64,
        Payload::S3(pointer) => pointer.size,
        Payload::Manifest(entries) => entries.iter().map(payload_size).sum(),
    }
}

type Opening = Pin<Box<dyn std::future::Future<Output = Result<VerifiedReader, Error>> + Send>>;

/// A manifest's entries one after another: each opened when the one before has
/// been read to its end (and so verified by its own [`VerifiedReader`]).
struct ManifestReader {
    store: Store,
    entries: std::collections::VecDeque<Payload>,
    current: Option<VerifiedReader>,
    opening: Option<Opening>,
}

impl AsyncRead for ManifestReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if let Some(current) = this.current.as_mut() {
                let before = buf.filled().len();
                match Pin::new(current).poll_read(cx, buf) {
                    Poll::Ready(Ok(())) if buf.filled().len() == before => this.current = None,
                    other => return other,
                }
            }
            if let Some(opening) = this.opening.as_mut() {
                match opening.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(reader)) => {
                        this.opening = None;
                        this.current = Some(reader);
                        continue;
                    }
                    Poll::Ready(Err(e)) => {
                        this.opening = None;
                        return Poll::Ready(Err(io::Error::other(e)));
                    }
                }
            }
            let Some(next) = this.entries.pop_front() else {
                return Poll::Ready(Ok(()));
            };
            let store = this.store.clone();
            this.opening = Some(Box::pin(async move { store.read_payload(&next).await }));
        }
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

async fn join_next<T>(set: &mut JoinSet<Result<T, Error>>) -> Result<T, Error>
where
    T: 'static,
{
    match set.join_next().await {
        Some(Ok(result)) => result,
        Some(Err(join)) => Err(Error::Service {
            service: "s3",
            operation: "UploadPart",
            message: format!("upload task ended abnormally: {join}"),
        }),
        None => unreachable!("join_next is only called on a non-empty set"),
    }
}

/// Read up to `limit` bytes, stopping early only at end of stream.
async fn read_part<R: AsyncRead + Unpin>(reader: &mut R, limit: usize) -> Result<Bytes, Error> {
    let mut buf = vec![0u8; limit];
    let mut filled = 0;
    while filled < limit {
        let n = reader
            .read(&mut buf[filled..])
            .await
            .map_err(crate::error::from_io)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    buf.truncate(filled);
    Ok(Bytes::from(buf))
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

/// An `AsyncRead` that checks the bytes it passes on against a pointer: more bytes
/// than expected fail at once; at end of stream, the size and sha256 must match.
/// A failure is an `io::Error` wrapping [`Error::InputIntegrity`]
/// (recover it with [`crate::error::from_io`]).
pub struct VerifiedReader {
    inner: Box<dyn AsyncRead + Send + Unpin>,
    what: String,
    expected_size: u64,
    expected_sha256: Option<String>,
    seen: u64,
    hasher: Sha256,
    verified: bool,
}

impl VerifiedReader {
    fn new(
        inner: Box<dyn AsyncRead + Send + Unpin>,
        what: String,
        expected_size: u64,
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

    /// The number of bytes the source should have.
    pub fn expected_size(&self) -> u64 {
        self.expected_size
    }

    fn integrity(&self, message: String) -> io::Error {
        io::Error::other(Error::InputIntegrity(format!("{}: {message}", self.what)))
    }

    fn check_end(&mut self) -> io::Result<()> {
        if self.seen != self.expected_size {
            return Err(self.integrity(format!(
                "ended after {} bytes, expected {}",
                self.seen, self.expected_size
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
                if this.seen > this.expected_size {
                    // An erroring read must not hand out bytes.
                    buf.set_filled(before);
                    return Poll::Ready(Err(this.integrity(format!(
                        "more than the expected {} bytes",
                        this.expected_size
                    ))));
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
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn reader(data: &'static [u8], size: u64, sha: Option<String>) -> VerifiedReader {
        VerifiedReader::new(Box::new(data), "test".into(), size, sha)
    }

    fn sha(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    async fn drain(mut r: VerifiedReader) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        r.read_to_end(&mut out)
            .await
            .map_err(crate::error::from_io)?;
        Ok(out)
    }

    #[test]
    fn parts_grow_so_10000_hold_more_than_5_tib_and_stay_within_s3_limits() {
        let sizes: Vec<usize> = (1..=S3_MAX_PARTS)
            .map(|n| part_size(n, DEFAULT_PART_BYTES, DEFAULT_PARTS_PER_SIZE))
            .collect();
        let total: u64 = sizes.iter().map(|&s| s as u64).sum();
        assert!(total >= 5 << 40, "10,000 parts hold {total} bytes");
        assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "sizes never shrink");
        assert!(
            sizes
                .iter()
                .all(|&s| (S3_MIN_PART_BYTES..=S3_MAX_PART_BYTES).contains(&s))
        );
        // Outputs up to 7.8 GiB keep the first size: memory does not grow for them.
        assert_eq!(sizes[999], DEFAULT_PART_BYTES);
        assert_eq!(sizes[1000], 2 * DEFAULT_PART_BYTES);
        // Never above 5 GiB, however far it goes.
        assert_eq!(
            part_size(1_000_000, DEFAULT_PART_BYTES, 1),
            S3_MAX_PART_BYTES
        );
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

    #[tokio::test]
    async fn inline_payloads_read_as_their_bytes() {
        let client = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .build(),
        );
        let store = Store::new(client);
        let r = store
            .read_payload(&Payload::Inline(serde_json::json!("text")))
            .await
            .unwrap();
        assert_eq!(drain(r).await.unwrap(), b"text");
    }
}
