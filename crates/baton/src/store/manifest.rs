//! A payload's bytes as one stream: `read_payload` reads inline data, one object,
//! or a manifest (inline or stored) as its entries one after another, each
//! verified when its end is read; and the sizes of what it reads.
//!
//! A manifest's entries may be stored manifests (a merge of many results stores
//! them in chunks and lists the chunks): each is loaded when the reader reaches it,
//! so memory holds one stored manifest per level, never all of them.

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
    /// entries one after another, each verified when its end is read. An entry that
    /// is itself a stored manifest reads as its entries, loaded when it is reached.
    ///
    /// [`MANIFEST_CONTENT_TYPE`]: crate::payload::MANIFEST_CONTENT_TYPE
    pub async fn read_payload(&self, payload: &Payload) -> Result<VerifiedReader, Error> {
        self.read_payload_at(payload, 0).await
    }

    /// `read_payload` with `depth` stored manifests already opened above this one.
    async fn read_payload_at(
        &self,
        payload: &Payload,
        depth: usize,
    ) -> Result<VerifiedReader, Error> {
        match payload {
            Payload::S3(pointer) if payload.is_stored_manifest() => {
                if depth >= MANIFEST_MAX_DEPTH {
                    return Err(Error::InvalidInput(format!(
                        "{} is a stored manifest nested {} deep; at most {MANIFEST_MAX_DEPTH}",
                        pointer.uri(),
                        depth + 1
                    )));
                }
                let manifest = self.load_manifest(pointer).await?;
                self.read_manifest(manifest, depth + 1)
            }
            Payload::Manifest(entries) => self.read_manifest(entries.clone(), depth),
            Payload::S3(pointer) => self.open(pointer).await,
            Payload::Inline(value) => {
                let bytes = inline_bytes(value);
                let size = bytes.len() as u64;
                Ok(VerifiedReader::new(
                    Box::new(io::Cursor::new(bytes)),
                    "inline payload".into(),
                    Some(size),
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
        // Straight into the Payload (no JSON tree beside it): the text and the
        // entries are all a level holds.
        let payload: Payload = serde_json::from_slice(&text).map_err(|e| {
            Error::InputIntegrity(format!("{} is not a manifest's JSON: {e}", pointer.uri()))
        })?;
        drop(text);
        match payload {
            Payload::Manifest(_) => {
                payload.validate()?;
                let Payload::Manifest(entries) = payload else {
                    unreachable!("matched above")
                };
                Ok(entries)
            }
            _ => Err(Error::InputIntegrity(format!(
                "{} is marked as a manifest but holds something else",
                pointer.uri()
            ))),
        }
    }

    fn read_manifest(&self, entries: Vec<Payload>, depth: usize) -> Result<VerifiedReader, Error> {
        let size = entries.iter().map(data_size).sum();
        let count = entries.len();
        let reader = ManifestReader {
            store: self.clone(),
            entries: entries.into(),
            depth,
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

/// How deep stored manifests may list stored manifests: a merge's stored list of
/// stored chunks is two levels, an item that is itself such a merge two more. The
/// bound stops a manifest that lists itself (possible only for pointers that pin
/// nothing: no sha256, no ETag) from reading forever.
pub const MANIFEST_MAX_DEPTH: usize = 4;

/// The size a pointer or inline data states: for a stored manifest, its JSON's
/// size (not the data it lists: see [`data_size`]).
pub fn payload_size(payload: &Payload) -> u64 {
    match payload {
        Payload::Inline(value) => inline_bytes(value).len() as u64,
        Payload::S3(pointer) => pointer.size,
        Payload::Manifest(entries) => entries.iter().map(payload_size).sum(),
    }
}

/// The bytes a reader of `payload` gets, when that is known without reading: `None`
/// when it is or lists a stored manifest, whose pointer gives its JSON's size.
pub fn data_size(payload: &Payload) -> Option<u64> {
    match payload {
        Payload::S3(_) if payload.is_stored_manifest() => None,
        Payload::Inline(_) | Payload::S3(_) => Some(payload_size(payload)),
        Payload::Manifest(entries) => entries.iter().map(data_size).sum(),
    }
}

type Opening = Pin<Box<dyn std::future::Future<Output = Result<VerifiedReader, Error>> + Send>>;

/// A manifest's entries one after another: each opened when the one before has
/// been read to its end (and so verified by its own [`VerifiedReader`]).
struct ManifestReader {
    store: Store,
    entries: std::collections::VecDeque<Payload>,
    /// Stored manifests opened above this one (entries open one deeper).
    depth: usize,
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
            let depth = this.depth;
            this.opening = Some(Box::pin(async move {
                store.read_payload_at(&next, depth).await
            }));
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
