//! Writes: one PutObject for a body under one part, else a multipart upload with
//! growing parts, as many in flight as the write budget holds, hashed as they go
//! and aborted on any error.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::task::JoinSet;

use super::Store;
use super::budget::part_size;
use crate::error::{Error, display_chain};
use crate::payload::S3Pointer;

impl Store {
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
