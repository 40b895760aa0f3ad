//! The S3 store against a real moto server: round trips, integrity failures, aborts.

#[path = "common/read.rs"]
mod read;

use read::read_all as read_payload_all;

use std::pin::Pin;
use std::task::{Context, Poll};

use baton::payload::S3Pointer;
use baton::{Payload, Store};
use moto_harness::{Moto, PatternReader};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

const MIB: u64 = 1024 * 1024;

async fn setup(moto: &Moto) -> Store {
    let config = moto.sdk_config().await;
    let store = Store::new(baton::aws::s3_client(&config))
        .with_part_sizes(5 * MIB as usize, MIB as usize)
        .with_memory(baton::store::TransferMemory {
            read: 4 * MIB as usize,
            write: 15 * MIB as usize,
        });
    moto.create_bucket("data");
    store
}

async fn read_all(store: &Store, pointer: &S3Pointer) -> Result<Vec<u8>, baton::Error> {
    read_payload_all(store, &Payload::S3(pointer.clone())).await
}

async fn object_exists(store: &Store, key: &str) -> bool {
    store
        .client()
        .head_object()
        .bucket("data")
        .key(key)
        .send()
        .await
        .is_ok()
}

async fn open_uploads(store: &Store) -> usize {
    let out = store
        .client()
        .list_multipart_uploads()
        .bucket("data")
        .send()
        .await
        .unwrap();
    out.uploads().len()
}

#[tokio::test]
async fn small_and_multipart_round_trips_carry_size_and_sha256() {
    let moto = Moto::start();
    let store = setup(&moto).await;
    for (key, len) in [
        ("empty", 0),
        ("small", 1000),
        ("exact-part", 5 * MIB),
        ("multi", 12 * MIB + 7),
    ] {
        let pointer = store
            .put(
                "data",
                key,
                PatternReader::new(len, 7),
                Some("application/octet-stream"),
            )
            .await
            .unwrap();
        assert_eq!(pointer.size, len, "{key}");
        assert_eq!(
            pointer.sha256.as_deref(),
            Some(PatternReader::sha256(len, 7).as_str()),
            "{key}"
        );
        assert!(pointer.etag.is_some(), "{key}");
        let back = read_all(&store, &pointer).await.unwrap();
        assert_eq!(back.len() as u64, len, "{key}");
    }
    assert_eq!(open_uploads(&store).await, 0);
}

#[tokio::test]
async fn integrity_failures() {
    let moto = Moto::start();
    let store = setup(&moto).await;
    let good = store
        .put("data", "obj", &b"hello world"[..], None)
        .await
        .unwrap();

    let mut wrong_size = good.clone();
    wrong_size.size = 12;
    let mut wrong_sha = good.clone();
    wrong_sha.sha256 = Some("0".repeat(64));
    let mut missing = good.clone();
    missing.key = "nope".into();
    for (what, pointer) in [
        ("size", wrong_size),
        ("sha256", wrong_sha),
        ("missing", missing),
    ] {
        let err = read_all(&store, &pointer).await.unwrap_err();
        assert_eq!(err.name(), "Baton.InputIntegrity", "{what}: {err}");
    }

    // A user's object pinned by ETag, then overwritten: the pin catches it.
    let pinned = store.head("data", "obj").await.unwrap();
    assert_eq!(pinned.size, 11);
    assert!(pinned.etag.is_some() && pinned.sha256.is_none());
    assert_eq!(read_all(&store, &pinned).await.unwrap(), b"hello world");
    store
        .put("data", "obj", &b"HELLO WORLD"[..], None)
        .await
        .unwrap();
    let err = read_all(&store, &pinned).await.unwrap_err();
    assert_eq!(err.name(), "Baton.InputIntegrity");
    assert!(
        err.to_string().contains("changed since it was pinned"),
        "{err}"
    );

    // Same size, different bytes, no ETag: only the sha256 can tell.
    let mut unpinned = good.clone();
    unpinned.etag = None;
    let err = read_all(&store, &unpinned).await.unwrap_err();
    assert!(err.to_string().contains("sha256"), "{err}");

    let err = store.head("data", "nope").await.unwrap_err();
    assert_eq!(err.name(), "Baton.InputIntegrity");

    let inline = store
        .read_payload(&Payload::Inline(serde_json::json!({"a": 1})))
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut inline = inline;
    inline.read_to_end(&mut out).await.unwrap();
    assert_eq!(out, br#"{"a":1}"#);
}

/// Yields `left` bytes, then fails.
struct FailingReader {
    inner: PatternReader,
    left: usize,
}

impl AsyncRead for FailingReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.left == 0 {
            return Poll::Ready(Err(std::io::Error::other("job crashed")));
        }
        let mut limited = buf.take(self.left);
        let poll = Pin::new(&mut self.inner).poll_read(cx, &mut limited);
        let n = limited.filled().len();
        buf.advance(n);
        self.left -= n;
        poll
    }
}

#[tokio::test]
async fn a_failing_writer_leaves_no_object_and_no_upload() {
    let moto = Moto::start();
    let store = setup(&moto).await;
    let reader = FailingReader {
        inner: PatternReader::new(u64::MAX, 3),
        left: (11 * MIB) as usize,
    };
    let err = store.put("data", "half", reader, None).await.unwrap_err();
    assert!(err.to_string().contains("job crashed"), "{err}");
    assert!(!object_exists(&store, "half").await);
    assert_eq!(
        open_uploads(&store).await,
        0,
        "the multipart upload is aborted"
    );
}

#[tokio::test]
async fn parts_grow_and_the_largest_object_is_written_but_one_byte_more_is_refused() {
    // The edge of S3's 10,000 parts, made cheap: three parts that double in size
    // (5, 10, 20 MiB) hold 35 MiB. Exactly that much is written in three parts; one
    // byte more fails before any more goes up, and nothing is left behind.
    let moto = Moto::start();
    let store = setup(&moto).await.with_part_growth(1, 3);
    let most = store.max_object_bytes();
    assert_eq!(most, 35 * MIB);
    let fits = store
        .put("data", "fits", PatternReader::new(most, 3), None)
        .await
        .unwrap();
    assert_eq!(fits.size, most);
    assert!(
        fits.etag.as_deref().unwrap_or("").ends_with("-3\""),
        "three parts, not seven of 5 MiB: {:?}",
        fits.etag
    );
    assert_eq!(read_all(&store, &fits).await.unwrap().len() as u64, most);

    let err = store
        .put("data", "too-big", PatternReader::new(most + 1, 3), None)
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Baton.WorkerError", "{err}");
    assert!(!object_exists(&store, "too-big").await);
    assert_eq!(open_uploads(&store).await, 0, "the upload is aborted");
}

/// A store that reads in 1 MiB ranges with `read` bytes of budget.
fn ranged_store(config: &aws_config::SdkConfig, read: u64) -> Store {
    Store::new(baton::aws::s3_client(config))
        .with_part_sizes(5 * MIB as usize, MIB as usize)
        .with_memory(baton::store::TransferMemory {
            read: read as usize,
            write: 15 * MIB as usize,
        })
}

/// The same, against `moto`, with the test bucket.
async fn ranged(moto: &Moto, read: u64) -> Store {
    let store = ranged_store(&moto.sdk_config().await, read);
    moto.create_bucket("data");
    store
}

/// Write `len` pattern bytes (`seed`) to `data/key`.
async fn put_pattern(store: &Store, key: &str, len: u64, seed: u64) -> S3Pointer {
    store
        .put("data", key, PatternReader::new(len, seed), None)
        .await
        .unwrap()
}

/// A moto, a store reading 1 MiB ranges with `read` bytes of budget, and an object
/// of `len` pattern bytes (`seed`) at `data/key`.
async fn ranged_object(read: u64, key: &str, len: u64, seed: u64) -> (Moto, Store, S3Pointer) {
    let moto = Moto::start();
    let store = ranged(&moto, read).await;
    let pointer = put_pattern(&store, key, len, seed).await;
    (moto, store, pointer)
}

fn pattern(len: u64, seed: u64) -> Vec<u8> {
    let mut out = Vec::new();
    futures::executor::block_on(PatternReader::new(len, seed).read_to_end(&mut out)).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_in_flight_arrive_in_order_whatever_order_they_finish_in() {
    // 9 ranges in flight for a 23-range object with a ragged tail.
    let len = 22 * MIB + 12_345;
    let (moto, store, pointer) = ranged_object(10 * MIB, "ordered", len, 11).await;
    let back = read_all(&store, &pointer).await.unwrap();
    assert!(back == pattern(len, 11), "the bytes come back in order");
    // And one range in flight (the smallest budget) gives the same bytes.
    let store = ranged(&moto, 0).await;
    assert!(read_all(&store, &pointer).await.unwrap() == pattern(len, 11));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_that_break_are_each_resumed_on_their_own() {
    use moto_harness::{BodyFault, FaultyHop};
    let len = 9 * MIB + 5;
    let (moto, _, pointer) = ranged_object(8 * MIB, "flaky/object", len, 5).await;
    for fault in [BodyFault::Cut, BodyFault::Stall] {
        // The first three GETs (three ranges in flight at once) break after 100 KiB.
        let hop = FaultyHop::start(&moto.endpoint, "data/flaky/", 100 * 1024, fault, 3);
        let config = moto_harness::sdk_config_for(&hop.endpoint).await;
        let flaky = ranged_store(&config, 8 * MIB)
            .with_read_resume(std::time::Duration::from_millis(500), 2);
        let back = read_all(&flaky, &pointer).await.unwrap();
        assert_eq!(hop.faults_left(), 0, "{fault:?}: every fault was injected");
        assert!(
            back == pattern(len, 5),
            "{fault:?}: resumed ranges fit together"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_overwritten_mid_read_fails_the_read_at_the_next_range() {
    // One range in flight: range 2 is asked for only once range 1 has been read.
    let len = 6 * MIB;
    let (_moto, store, pointer) = ranged_object(0, "moving", len, 1).await;
    let mut reader = store.open(&pointer).await.unwrap();
    let mut first = vec![0u8; MIB as usize];
    reader.read_exact(&mut first).await.unwrap();
    put_pattern(&store, "moving", len, 3).await;
    let mut rest = Vec::new();
    let err = reader
        .read_to_end(&mut rest)
        .await
        .map_err(baton::error::from_io)
        .unwrap_err();
    assert_eq!(err.name(), "Baton.InputIntegrity", "{err}");
    assert!(
        err.to_string().contains("changed while it was read"),
        "{err}"
    );
    // Even without the pointer's ETag, the first range pins the object.
    let mut unpinned = pointer.clone();
    unpinned.etag = None;
    unpinned.sha256 = None;
    let mut reader = store.open(&unpinned).await.unwrap();
    reader.read_exact(&mut first).await.unwrap();
    put_pattern(&store, "moving", len, 5).await;
    let err = reader
        .read_to_end(&mut rest)
        .await
        .map_err(baton::error::from_io)
        .unwrap_err();
    assert!(
        err.to_string().contains("changed while it was read"),
        "{err}"
    );
}

#[tokio::test]
async fn a_manifest_reads_its_entries_in_order_each_verified_inline_or_stored() {
    let moto = Moto::start();
    let store = setup(&moto).await;
    let a = store
        .put("data", "items/a", &b"first object\n"[..], None)
        .await
        .unwrap();
    let b = store
        .put("data", "items/b", &vec![b'b'; 6 * MIB as usize][..], None)
        .await
        .unwrap();
    let manifest = Payload::Manifest(vec![
        Payload::S3(a.clone()),
        Payload::Inline(serde_json::json!("inline text\n")),
        Payload::S3(b.clone()),
    ]);
    let mut want = b"first object\ninline text\n".to_vec();
    want.extend(vec![b'b'; 6 * MIB as usize]);
    assert_eq!(read_payload_all(&store, &manifest).await.unwrap(), want);
    assert_eq!(baton::store::payload_size(&manifest), want.len() as u64);

    // Stored (too large for an override): a pointer marked as a manifest reads the same.
    let stored = store
        .put(
            "data",
            "items/manifest.json",
            manifest.to_json().as_bytes(),
            Some(baton::payload::MANIFEST_CONTENT_TYPE),
        )
        .await
        .unwrap();
    assert!(Payload::S3(stored.clone()).is_stored_manifest());
    assert_eq!(
        read_payload_all(&store, &Payload::S3(stored))
            .await
            .unwrap(),
        want
    );

    // An entry that changed since its pointer was made fails the read, by name.
    store
        .put("data", "items/a", &b"first objecT\n"[..], None)
        .await
        .unwrap();
    let err = read_payload_all(&store, &manifest).await.unwrap_err();
    assert_eq!(err.name(), "Baton.InputIntegrity", "{err}");
    assert!(err.to_string().contains("items/a"), "{err}");
}
