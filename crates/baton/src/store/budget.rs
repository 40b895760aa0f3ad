//! The transfer budget ([`TransferMemory`]) and what follows from it: the growing
//! size of multipart parts, the size of read ranges, and how many are in flight.

use crate::limits::S3_MAX_PART_BYTES;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{S3_MAX_PARTS, S3_MIN_PART_BYTES};

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
}
