//! Merging a Distributed Map's ResultWriter output against a real moto S3: item
//! order across shuffled result files, failures and their tolerance, batches, the
//! manifest found under a prefix, and manifests of stored manifests read back
//! byte for byte, each object verified.

#[path = "common/dmap.rs"]
mod dmap;
#[path = "common/read.rs"]
mod read;

use read::read_all;

use baton::map_results::{self, MapResults, MergeSettings, OutputPlace, Tolerance};
use baton::payload::{MANIFEST_CONTENT_TYPE, S3Pointer};
use baton::{Payload, Store};
use moto_harness::Moto;
use serde_json::{Value, json};

const MIB: usize = 1024 * 1024;
const BUCKET: &str = "data";

async fn setup(moto: &Moto) -> Store {
    let config = moto.sdk_config().await;
    let store = Store::new(baton::aws::s3_client(&config))
        .with_part_sizes(5 * MIB, MIB)
        .with_memory(baton::store::TransferMemory {
            read: 4 * MIB,
            write: 15 * MIB,
        });
    moto.create_bucket(BUCKET);
    store
}

async fn get_text(store: &Store, uri: &str) -> String {
    let at = baton::payload::S3Location::parse(uri).unwrap();
    let object = store
        .client()
        .get_object()
        .bucket(&at.bucket)
        .key(&at.key)
        .send()
        .await
        .unwrap();
    String::from_utf8(object.body.collect().await.unwrap().to_vec()).unwrap()
}

/// A deterministic shuffle (a fixed LCG), so a failure is reproducible.
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed;
    for i in (1..items.len()).rev() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        items.swap(i, (state >> 33) as usize % (i + 1));
    }
}

const ITEMS: u64 = 5_000;
const FAILED: [u64; 2] = [13, 2_500];
const PENDING: [u64; 2] = [4_998, 4_999];

/// 5,000 items: most outputs inline, every 97th an object Baton wrote (sha256),
/// some a user's object pinned by ETag alone; two failed, two never ran. The
/// succeeded entries are shuffled across three files (one of them JSON lines).
/// The manifest's key, and the bytes the merged manifest should read as.
async fn five_thousand(store: &Store, prefix: &str, run_id: &str) -> (String, Vec<u8>) {
    let mut entries = Vec::new();
    let mut want = Vec::new();
    for i in 0..ITEMS {
        if FAILED.contains(&i) || PENDING.contains(&i) {
            continue;
        }
        let (output, bytes) = if i % 97 == 0 {
            let bytes = format!("object {i}\n").into_bytes();
            let pointer = store
                .put(BUCKET, &format!("outputs/{i}"), bytes.as_slice(), None)
                .await
                .unwrap();
            (json!({"s3": pointer}), bytes)
        } else if i % 211 == 5 {
            let bytes = format!("user object {i}\n").into_bytes();
            let key = format!("user/{i}");
            store
                .put(BUCKET, &key, bytes.as_slice(), None)
                .await
                .unwrap();
            let pinned = store.head(BUCKET, &key).await.unwrap();
            assert!(pinned.sha256.is_none() && pinned.etag.is_some());
            (json!({"s3": pinned}), bytes)
        } else {
            let text = format!("item {i}\n");
            (json!({"inline": text}), text.into_bytes())
        };
        want.extend_from_slice(&bytes);
        entries.push(dmap::succeeded(i, &output));
    }
    shuffle(&mut entries, 7);
    let third = entries.len() / 3;
    let failed: Vec<Value> = vec![
        dmap::failed(2_500, "Baton.OutOfMemory", "{\"memory\":512}"),
        dmap::failed(
            13,
            "Baton.WorkerError",
            &format!("{{\"exitCode\":3,\"stderr\":\"{}\"}}", "x".repeat(3_000)),
        ),
    ];
    let pending: Vec<Value> = PENDING.iter().rev().map(|&i| dmap::pending(i)).collect();
    let files = vec![
        (
            "SUCCEEDED",
            "SUCCEEDED_0.json".to_string(),
            dmap::file_text(&entries[..third], false),
        ),
        (
            "SUCCEEDED",
            "SUCCEEDED_1.json".to_string(),
            dmap::file_text(&entries[third..2 * third], false),
        ),
        (
            "SUCCEEDED",
            "SUCCEEDED_2.json".to_string(),
            dmap::file_text(&entries[2 * third..], true),
        ),
        (
            "FAILED",
            "FAILED_0.json".to_string(),
            dmap::file_text(&failed, false),
        ),
        (
            "PENDING",
            "PENDING_0.json".to_string(),
            dmap::file_text(&pending, false),
        ),
    ];
    let key = dmap::write_layout(store, BUCKET, prefix, run_id, files).await;
    (key, want)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_shuffled_results_read_back_in_item_order() {
    let moto = Moto::start();
    let store = setup(&moto).await;
    let (key, want) = five_thousand(&store, "results", "run-1").await;
    let results = MapResults::Manifest {
        bucket: BUCKET.into(),
        key: key.clone(),
    };
    let out = OutputPlace::new(BUCKET, "executions/demo/merge/");

    let started = std::time::Instant::now();
    let tolerance = Tolerance {
        percentage: 0.1,
        count: 4,
    };
    let merged = map_results::merge(&store, &results, &out, tolerance)
        .await
        .unwrap();
    println!(
        "merged 5,000 items in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        (
            merged.counts.succeeded,
            merged.counts.failed,
            merged.counts.pending
        ),
        (4_996, 2, 2)
    );
    assert_eq!(merged.counts.total(), ITEMS);
    assert_eq!(merged.chunks, 5, "one chunk manifest per 1,000 items");
    assert_eq!(merged.map_run_arn.as_deref(), Some(dmap::MAP_RUN));
    assert_eq!(merged.results, format!("s3://{BUCKET}/{key}"));
    let Payload::Manifest(chunks) = &merged.payload else {
        panic!("{:?}", merged.payload)
    };
    assert_eq!(chunks.len(), 5);
    for (n, chunk) in chunks.iter().enumerate() {
        let Payload::S3(pointer) = chunk else {
            panic!()
        };
        assert!(chunk.is_stored_manifest(), "{chunk:?}");
        assert!(pointer.sha256.is_some());
        assert_eq!(
            pointer.key,
            format!("executions/demo/merge/chunks/{n:08}.json")
        );
    }
    assert!(merged.payload.validate().is_ok());

    // Read back: exactly the outputs, in item order, every object verified.
    let started = std::time::Instant::now();
    let back = read_all(&store, &merged.payload).await.unwrap();
    println!("read back in {:.2} s", started.elapsed().as_secs_f64());
    assert_eq!(back.len(), want.len());
    assert!(
        back == want,
        "the merged bytes differ from the outputs in item order"
    );
    let reader = store.read_payload(&merged.payload).await.unwrap();
    assert_eq!(reader.expected_size(), None, "chunks are stored manifests");

    // The failure list: a line an item, in item order, the nested Baton error.
    let uri = merged.failure_list.clone().unwrap();
    assert_eq!(
        uri,
        format!("s3://{BUCKET}/executions/demo/merge/failed.jsonl")
    );
    let lines: Vec<Value> = get_text(&store, &uri)
        .await
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let indexes: Vec<u64> = lines.iter().map(|l| l["index"].as_u64().unwrap()).collect();
    assert_eq!(indexes, [13, 2_500, 4_998, 4_999]);
    assert_eq!(lines[0]["error"], "Baton.WorkerError");
    assert_eq!(lines[0]["execution"], dmap::execution(13));
    assert_eq!(
        lines[0]["taskExecution"],
        "arn:aws:states:us-east-1:123456789012:execution:baton-Task:t-13"
    );
    assert_eq!(lines[0]["cause"].as_str().unwrap().chars().count(), 1_024);
    assert_eq!(lines[1]["error"], "Baton.OutOfMemory");
    assert_eq!(lines[2]["status"], "PENDING");
    assert_eq!(lines[2]["error"], Value::Null);

    // One more failure than the count tolerates: Baton.ItemsFailed, bounded.
    for tolerance in [
        Tolerance {
            percentage: 0.1,
            count: 3,
        },
        Tolerance {
            percentage: 0.07,
            count: 100,
        },
        Tolerance::NONE,
    ] {
        let err = map_results::merge(&store, &results, &out, tolerance)
            .await
            .unwrap_err();
        assert_eq!(err.name(), "Baton.ItemsFailed", "{err}");
        let cause = err.to_string();
        assert!(cause.chars().count() <= map_results::ITEMS_FAILED_CAUSE_MAX_CHARS);
        let report: Value = serde_json::from_str(&cause).unwrap();
        assert_eq!(
            (&report["total"], &report["failed"], &report["pending"]),
            (&json!(5_000), &json!(2), &json!(2))
        );
        assert_eq!(report["failures"], uri);
        assert_eq!(report["mapRunArn"], dmap::MAP_RUN);
        assert_eq!(report["firstFailures"][0]["index"], 13);
        assert_eq!(report["firstFailures"][0]["error"], "Baton.WorkerError");
        assert_eq!(report["firstFailures"].as_array().unwrap().len(), 4);
    }

    // A chunk changed after the merge fails the read, naming it.
    store
        .put(
            BUCKET,
            "executions/demo/merge/chunks/00000002.json",
            &b"{\"manifest\":[]}"[..],
            Some(MANIFEST_CONTENT_TYPE),
        )
        .await
        .unwrap();
    let err = read_all(&store, &merged.payload).await.unwrap_err();
    assert_eq!(err.name(), "Baton.InputIntegrity", "{err}");
    assert!(err.to_string().contains("chunks/00000002.json"), "{err}");
}

/// 5,000 shuffled results stored under `results/` and merge settings with chunks of
/// ten items (so 500 chunks), their temporary files in a folder of this test's own
/// (`name`). Fields drop in order: moto last.
struct FiveThousand {
    store: Store,
    results: MapResults,
    want: Vec<u8>,
    temp: std::path::PathBuf,
    settings: MergeSettings,
    _moto: Moto,
}

async fn five_thousand_in_chunks_of_ten(name: &str) -> FiveThousand {
    let moto = Moto::start();
    let store = setup(&moto).await;
    let (key, want) = five_thousand(&store, "results", "run-1").await;
    let temp = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&temp).unwrap();
    let settings = MergeSettings {
        temp_dir: temp.clone(),
        chunk_items: 10,
        ..MergeSettings::default()
    };
    let results = MapResults::Manifest {
        bucket: BUCKET.into(),
        key,
    };
    FiveThousand {
        store,
        results,
        want,
        temp,
        settings,
        _moto: moto,
    }
}

#[tokio::test]
async fn a_long_list_of_chunks_is_stored_and_reads_the_same() {
    let FiveThousand {
        store,
        results,
        want,
        temp,
        settings,
        _moto,
    } = five_thousand_in_chunks_of_ten("baton-merge-test").await;
    let merged = map_results::merge_with(
        &store,
        &results,
        &OutputPlace::new(BUCKET, "executions/long/merge"),
        Tolerance::of_map(None, Some(4)),
        &settings,
    )
    .await
    .unwrap();
    assert_eq!(merged.chunks, 500);
    let Payload::S3(list) = &merged.payload else {
        panic!("{:?}", merged.payload)
    };
    assert!(merged.payload.is_stored_manifest());
    assert_eq!(list.key, "executions/long/merge/manifest.json");
    assert!(list.size > map_results::INLINE_MANIFEST_MAX_CHARS as u64);
    // Three levels: the stored list, its stored chunks, their entries.
    assert!(read_all(&store, &merged.payload).await.unwrap() == want);
    assert_eq!(
        std::fs::read_dir(&temp).unwrap().count(),
        0,
        "the temporary files are gone"
    );
    std::fs::remove_dir_all(&temp).unwrap();
}

/// A chunk upload that fails stops the ordering pass (which would otherwise wait
/// for ever to hand on its next chunk) and is the merge's error; no temporary
/// files stay behind.
#[tokio::test]
async fn a_failed_upload_fails_the_merge_at_once() {
    let FiveThousand {
        store,
        results,
        temp,
        settings,
        _moto,
        ..
    } = five_thousand_in_chunks_of_ten("baton-merge-fail").await;
    let out = OutputPlace::new("no-such-bucket", "merge/");
    let merge = map_results::merge_with(
        &store,
        &results,
        &out,
        Tolerance::of_map(None, Some(4)),
        &settings,
    );
    let err = tokio::time::timeout(std::time::Duration::from_secs(60), merge)
        .await
        .expect("the merge ends")
        .unwrap_err();
    assert_eq!(err.name(), "Baton.ServiceUnavailable", "{err}");
    assert!(err.to_string().contains("PutObject"), "{err}");
    assert_eq!(std::fs::read_dir(&temp).unwrap().count(), 0);
    std::fs::remove_dir_all(&temp).unwrap();
}

#[tokio::test]
async fn the_newest_manifest_under_a_prefix_is_merged_and_sizes_are_checked() {
    let moto = Moto::start();
    let store = setup(&moto).await;
    let prefix = MapResults::Prefix {
        bucket: BUCKET.into(),
        prefix: "fan".into(),
    };
    let out = OutputPlace::new(BUCKET, "executions/p/merge/");
    let err = map_results::merge(&store, &prefix, &out, Tolerance::NONE)
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Baton.InputIntegrity", "{err}");

    let entries: Vec<Value> = (0..3)
        .map(|i| dmap::succeeded(i, &json!({"inline": format!("old {i}\n")})))
        .collect();
    let file = dmap::file_text(&entries, false);
    dmap::write_layout(
        &store,
        BUCKET,
        "fan",
        "zzz-older",
        vec![("SUCCEEDED", "SUCCEEDED_0.json".into(), file)],
    )
    .await;
    // Not a map run's manifest: deeper, or not named so.
    store
        .put(BUCKET, "fan/x/y/manifest.json", &b"{}"[..], None)
        .await
        .unwrap();
    store
        .put(BUCKET, "fan/manifest.json", &b"{}"[..], None)
        .await
        .unwrap();
    // S3 times have a resolution of a second: the newer one is a second later.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let entries: Vec<Value> = (0..2)
        .rev()
        .map(|i| dmap::succeeded(i, &json!({"inline": format!("new {i}\n")})))
        .collect();
    let file = dmap::file_text(&entries, true);
    let newer = dmap::write_layout(
        &store,
        BUCKET,
        "fan",
        "aaa-newer",
        vec![("SUCCEEDED", "SUCCEEDED_0.json".into(), file)],
    )
    .await;

    let merged = map_results::merge(&store, &prefix, &out, Tolerance::NONE)
        .await
        .unwrap();
    assert_eq!(merged.results, format!("s3://{BUCKET}/{newer}"));
    assert_eq!(merged.counts.succeeded, 2);
    assert_eq!(merged.failure_list, None);
    assert_eq!(
        read_all(&store, &merged.payload).await.unwrap(),
        b"new 0\nnew 1\n"
    );

    // A result file whose size is not the manifest's: refused before it is read.
    let entries = vec![dmap::succeeded(0, &json!({"inline": "x"}))];
    let bytes = dmap::file_text(&entries, false);
    store
        .put(BUCKET, "sized/run/SUCCEEDED_0.json", bytes.as_slice(), None)
        .await
        .unwrap();
    let lists =
        json!({"SUCCEEDED": [{"Key": "sized/run/SUCCEEDED_0.json", "Size": bytes.len() + 1}]});
    let key = dmap::write_manifest(&store, BUCKET, "sized/run", lists).await;
    let err = map_results::merge(
        &store,
        &MapResults::Manifest {
            bucket: BUCKET.into(),
            key,
        },
        &out,
        Tolerance::NONE,
    )
    .await
    .unwrap_err();
    assert_eq!(err.name(), "Baton.InputIntegrity", "{err}");
    assert!(err.to_string().contains("SUCCEEDED_0.json"), "{err}");

    // An output that is not a Payload names the file, the item and its execution.
    let entries = vec![
        dmap::succeeded(0, &json!({"inline": "x"})),
        dmap::succeeded(1, &json!({"result": 1})),
    ];
    let bad = dmap::write_layout(
        &store,
        BUCKET,
        "bad",
        "run",
        vec![(
            "SUCCEEDED",
            "SUCCEEDED_0.json".into(),
            dmap::file_text(&entries, false),
        )],
    )
    .await;
    let err = map_results::merge(
        &store,
        &MapResults::Manifest {
            bucket: BUCKET.into(),
            key: bad,
        },
        &out,
        Tolerance::NONE,
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert_eq!(err.name(), "Baton.InvalidInput", "{text}");
    for part in ["bad/run/SUCCEEDED_0.json", "item 1", &dmap::execution(1)] {
        assert!(text.contains(part), "{part}: {text}");
    }

    // A huge ResultWriter manifest is refused unread.
    let huge = vec![b' '; map_results::RESULT_MANIFEST_MAX_BYTES as usize + 1];
    store
        .put(BUCKET, "huge/run/manifest.json", huge.as_slice(), None)
        .await
        .unwrap();
    let err = map_results::merge(
        &store,
        &MapResults::from_uri(&format!("s3://{BUCKET}/huge/run/manifest.json")).unwrap(),
        &out,
        Tolerance::NONE,
    )
    .await
    .unwrap_err();
    assert_eq!(err.name(), "Baton.InvalidInput", "{err}");
}

#[tokio::test]
async fn batches_are_ordered_by_their_first_item_and_a_failed_batch_fails_each_item() {
    let moto = Moto::start();
    let store = setup(&moto).await;
    let mut entries = Vec::new();
    let mut want = Vec::new();
    let mut failed = Vec::new();
    let mut first = 0;
    while first < 300 {
        let len = 7.min(300 - first);
        if first == 140 {
            let mut entry = dmap::failed(first, "Baton.ContainerExited", "{\"exitCode\":1}");
            entry["Input"] = dmap::succeeded_batch(first, len, &json!(null))["Input"].clone();
            failed.push(entry);
        } else {
            let text = format!("batch {first}+{len}\n");
            want.extend_from_slice(text.as_bytes());
            entries.push(dmap::succeeded_batch(first, len, &json!({"inline": text})));
        }
        first += len;
    }
    shuffle(&mut entries, 3);
    let half = entries.len() / 2;
    let key = dmap::write_layout(
        &store,
        BUCKET,
        "batched",
        "run",
        vec![
            (
                "SUCCEEDED",
                "SUCCEEDED_0.json".into(),
                dmap::file_text(&entries[..half], false),
            ),
            (
                "SUCCEEDED",
                "SUCCEEDED_1.json".into(),
                dmap::file_text(&entries[half..], false),
            ),
            (
                "FAILED",
                "FAILED_0.json".into(),
                dmap::file_text(&failed, false),
            ),
        ],
    )
    .await;
    let settings = MergeSettings {
        chunk_items: 50,
        ..MergeSettings::default()
    };
    let merged = map_results::merge_with(
        &store,
        &MapResults::Manifest {
            bucket: BUCKET.into(),
            key,
        },
        &OutputPlace::new(BUCKET, "executions/b/merge/"),
        Tolerance::of_map(Some(5.0), None),
        &settings,
    )
    .await
    .unwrap();
    assert_eq!((merged.counts.succeeded, merged.counts.failed), (293, 7));
    assert_eq!(merged.counts.executions, 43);
    assert_eq!(read_all(&store, &merged.payload).await.unwrap(), want);
    let lines = get_text(&store, merged.failure_list.as_deref().unwrap()).await;
    let indexes: Vec<u64> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["index"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(indexes, (140..147).collect::<Vec<_>>());
}

/// `read_payload` of manifests that list stored manifests: the exact bytes of the
/// entries, each object verified, an inline manifest inside a manifest refused,
/// and a manifest that lists itself stopped.
#[tokio::test]
async fn manifests_of_stored_manifests_read_as_their_entries() {
    let moto = Moto::start();
    let store = setup(&moto).await;
    let object = store
        .put(BUCKET, "o/a", &b"object a\n"[..], None)
        .await
        .unwrap();
    let big = store
        .put(BUCKET, "o/big", vec![b'z'; 6 * MIB].as_slice(), None)
        .await
        .unwrap();
    let stored = |key: &'static str, manifest: Payload| {
        let store = store.clone();
        async move {
            Payload::S3(
                store
                    .put(
                        BUCKET,
                        key,
                        manifest.to_json().as_bytes(),
                        Some(MANIFEST_CONTENT_TYPE),
                    )
                    .await
                    .unwrap(),
            )
        }
    };
    let one = stored(
        "m/one",
        Payload::Manifest(vec![
            Payload::S3(object.clone()),
            Payload::Inline(json!("inline\n")),
        ]),
    )
    .await;
    let two = stored("m/two", Payload::Manifest(vec![Payload::S3(big.clone())])).await;
    let empty = stored("m/empty", Payload::Manifest(vec![])).await;
    let nested = Payload::Manifest(vec![
        one.clone(),
        Payload::Inline(json!("between\n")),
        empty,
        two.clone(),
    ]);
    let mut want = b"object a\ninline\nbetween\n".to_vec();
    want.extend(vec![b'z'; 6 * MIB]);
    assert_eq!(read_all(&store, &nested).await.unwrap(), want);
    // The same manifest stored: one level more, the same bytes.
    let outer = stored("m/outer", nested.clone()).await;
    assert_eq!(read_all(&store, &outer).await.unwrap(), want);
    // Sizes: known for plain entries, unknown (each entry checked alone) with stored ones.
    assert_eq!(
        baton::store::data_size(&Payload::Manifest(vec![Payload::S3(object.clone())])),
        Some(9)
    );
    assert_eq!(baton::store::data_size(&nested), None);

    // An object under a chunk that changed fails the read by name.
    store
        .put(BUCKET, "o/a", &b"object A\n"[..], None)
        .await
        .unwrap();
    let err = read_all(&store, &outer).await.unwrap_err();
    assert_eq!(err.name(), "Baton.InputIntegrity", "{err}");
    assert!(err.to_string().contains("o/a"), "{err}");

    // A stored manifest holding an inline manifest as an entry is refused.
    let text = json!({"manifest": [{"manifest": [{"inline": "x"}]}]}).to_string();
    let bad = store
        .put(
            BUCKET,
            "m/bad",
            text.as_bytes(),
            Some(MANIFEST_CONTENT_TYPE),
        )
        .await
        .unwrap();
    let err = read_all(&store, &Payload::S3(bad)).await.unwrap_err();
    assert_eq!(err.name(), "Baton.InvalidInput", "{err}");
    assert!(Payload::parse(&text).is_err());

    // A manifest that lists itself (pointers that pin nothing) stops at the depth bound.
    let me = S3Pointer {
        bucket: BUCKET.into(),
        key: "m/loop".into(),
        size: 0,
        sha256: None,
        etag: None,
        version_id: None,
        content_type: Some(MANIFEST_CONTENT_TYPE.into()),
    };
    let mut text = String::new();
    for _ in 0..3 {
        let entry = S3Pointer {
            size: text.len() as u64,
            ..me.clone()
        };
        text = Payload::Manifest(vec![Payload::S3(entry)]).to_json();
    }
    // Sized to itself: the size field's digits do not change across the rounds.
    store
        .put(
            BUCKET,
            "m/loop",
            text.as_bytes(),
            Some(MANIFEST_CONTENT_TYPE),
        )
        .await
        .unwrap();
    let err = read_all(
        &store,
        &Payload::S3(S3Pointer {
            size: text.len() as u64,
            ..me
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(err.name(), "Baton.InvalidInput", "{err}");
    assert!(err.to_string().contains("nested"), "{err}");
}
