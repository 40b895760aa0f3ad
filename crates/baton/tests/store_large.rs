//! A 100 MiB round trip through the store within its memory budget (its own test
//! binary, so the peak RSS measured is this round trip's alone).

use moto_harness::{Moto, PatternReader, peak_rss_bytes};
use tokio::io::AsyncReadExt;

const MIB: u64 = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_of_100_mib_in_bounded_memory() {
    let len = 100 * MIB;
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    // 16 MiB each way: 3 ranges of 4 MiB in flight, 3 parts of 5 MiB uploading.
    let budget = baton::store::TransferMemory {
        read: 16 * MIB as usize,
        write: 16 * MIB as usize,
    };
    let store = baton::Store::new(baton::aws::s3_client(&config))
        .with_part_sizes(5 * MIB as usize, 4 * MIB as usize)
        .with_memory(budget);
    moto.create_bucket("big");
    let before = peak_rss_bytes();

    let started = std::time::Instant::now();
    let pointer = store
        .put("big", "object", PatternReader::new(len, 42), None)
        .await
        .unwrap();
    let put_secs = started.elapsed().as_secs_f64();
    assert_eq!(pointer.size, len);
    assert_eq!(
        pointer.sha256.as_deref(),
        Some(PatternReader::sha256(len, 42).as_str())
    );

    let started = std::time::Instant::now();
    let mut reader = store.open(&pointer).await.unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = reader
            .read(&mut buf)
            .await
            .map_err(baton::error::from_io)
            .unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    let get_secs = started.elapsed().as_secs_f64();
    assert_eq!(total, len);

    let peak = peak_rss_bytes();
    println!(
        "100 MiB round trip: peak RSS {:.1} MiB (before {:.1} MiB); put {:.1} MB/s, verified get {:.1} MB/s",
        peak as f64 / MIB as f64,
        before as f64 / MIB as f64,
        len as f64 / 1e6 / put_secs,
        len as f64 / 1e6 / get_secs
    );
    // The buffers stay within the budget (both directions: memory the put freed may
    // stay with the allocator while the get runs), plus 8 MiB for HTTP buffers and
    // the allocator's free lists, over what the process held before.
    let allowed = before + (budget.read + budget.write) as u64 + 8 * MIB;
    assert!(
        peak < allowed,
        "peak RSS {} MiB is over the budget's {} MiB",
        peak / MIB,
        allowed / MIB
    );
}
