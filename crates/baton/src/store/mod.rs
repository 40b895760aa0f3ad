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
//!
//! The module's parts: the transfer budget and part sizes (`budget`), multipart
//! writes (`write`), pinned and resumed parallel range reads (`read`), the
//! size-and-sha256 check over a read (`verify`), and payloads read as one stream,
//! manifests included (`manifest`). This file holds the [`Store`] itself and its
//! settings.

mod budget;
mod manifest;
mod read;
mod verify;
mod write;

use crate::limits::{S3_MAX_PARTS, S3_MIN_PART_BYTES};

pub use budget::{
    DEFAULT_PART_BYTES, DEFAULT_PARTS_PER_SIZE, DEFAULT_RANGE_BYTES, DEFAULT_TRANSFER_MEMORY,
    TransferMemory, part_size, ranges_in_flight,
};
pub use manifest::{MANIFEST_MAX_BYTES, MANIFEST_MAX_DEPTH, data_size, payload_size};
pub use verify::VerifiedReader;

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
}
