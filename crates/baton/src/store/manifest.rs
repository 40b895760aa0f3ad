//! A payload's bytes as one stream: `read_payload` reads inline data, one object,
//! or a manifest (inline or stored) as its entries one after another, each
//! verified when its end is read; and the sizes of what it reads.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use super::Store;
use super::verify::VerifiedReader;
use crate::error::Error;
use crate::payload::{Payload, S3Pointer, inline_bytes};

impl Store {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::verify::tests::drain;

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
