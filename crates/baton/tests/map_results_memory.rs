//! A merge's memory does not grow with the number of items: 10,000 and 100,000
//! results merged, and the merged manifests read back, each in a process of its
//! own (this test binary run again as a child, against the parent's moto), so
//! neither the data's generation nor memory an earlier run left to the allocator
//! hides or inflates a peak. Each child reports its peak RSS (VmHWM) and its
//! growth over the RSS it had just before the merge or read began.
//!
//! The merge runs with caps that 10,000 results already fill (one chunk upload in
//! flight, a 1 MiB spill buffer), so the two sizes differ only in what grows with
//! the items. `BATON_MERGE_MEMORY_DEFAULTS=1` measures [`MergeSettings::default`]
//! instead (4 uploads, each holding one part buffer of the store's, and a 4 MiB
//! spill buffer: caps only the larger run fills), and `BATON_MERGE_MEMORY_SIZES`
//! other sizes (`10000,100000,300000`). The children
//! run with one malloc arena (`MALLOC_ARENA_MAX=1`, unless set otherwise): with
//! one arena a thread, which threads happen to allocate what moves the peak by
//! ±8 MiB from run to run, more than what is measured.

#[path = "common/dmap.rs"]
mod dmap;

use std::io::Write;

use baton::map_results::{self, MapResults, MergeSettings, Outcome, OutputPlace, Tolerance};
use baton::{Payload, Store};
use moto_harness::Moto;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use tokio::io::AsyncReadExt;

const MIB: usize = 1024 * 1024;
const BUCKET: &str = "data";
/// Entries a SUCCEEDED file holds at most (about 6 MB): every size reads files of
/// the same size, so the store's read buffers are the same for each.
const PER_FILE: u64 = 10_000;

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

/// Reset the peak RSS to the current RSS (the setup's own peak is not the
/// merge's); the RSS now, in KiB.
fn reset_peak() -> u64 {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
    status_kib("VmRSS:")
}

fn is_failed(index: u64) -> bool {
    index % 200 == 199
}

fn output_text(index: u64) -> String {
    format!("item {index}\n")
}

/// `n` results in a shuffled order (a permutation `k ↦ k·7919 + 12345 mod n`)
/// across SUCCEEDED files of [`PER_FILE`] entries and one FAILED file, written to
/// disk an entry at a time and uploaded from there: nothing is ever whole in
/// memory. The manifest's key, the result files' bytes, and the sha256 the merged
/// bytes should have.
async fn layout(store: &Store, dir: &std::path::Path, n: u64) -> (String, u64, String) {
    let files = n.div_ceil(PER_FILE);
    let mut writers: Vec<std::io::BufWriter<std::fs::File>> = (0..=files)
        .map(|f| {
            std::io::BufWriter::new(std::fs::File::create(dir.join(format!("{n}-{f}"))).unwrap())
        })
        .collect();
    let mut first = vec![true; writers.len()];
    for w in &mut writers {
        w.write_all(b"[").unwrap();
    }
    for k in 0..n {
        let index = (k * 7_919 + 12_345) % n;
        let (f, entry) = if is_failed(index) {
            (
                files as usize,
                dmap::failed(index, "Baton.WorkerError", "{\"exitCode\":3}"),
            )
        } else {
            let output = json!({"inline": output_text(index)});
            ((k % files) as usize, dmap::succeeded(index, &output))
        };
        if !first[f] {
            writers[f].write_all(b",").unwrap();
        }
        first[f] = false;
        serde_json::to_writer(&mut writers[f], &entry).unwrap();
    }
    let mut lists = json!({"FAILED": [], "PENDING": [], "SUCCEEDED": []});
    let mut bytes = 0;
    for (f, mut w) in writers.into_iter().enumerate() {
        w.write_all(b"]").unwrap();
        w.flush().unwrap();
        drop(w);
        let (list, name) = if f == files as usize {
            ("FAILED", "FAILED_0.json".to_string())
        } else {
            ("SUCCEEDED", format!("SUCCEEDED_{f}.json"))
        };
        let key = format!("results/run-{n}/{name}");
        let file = tokio::fs::File::open(dir.join(format!("{n}-{f}")))
            .await
            .unwrap();
        let pointer = store
            .put(BUCKET, &key, file, Some("application/json"))
            .await
            .unwrap();
        bytes += pointer.size;
        lists[list]
            .as_array_mut()
            .unwrap()
            .push(json!({"Key": key, "Size": pointer.size}));
    }
    let key = dmap::write_manifest(store, BUCKET, &format!("results/run-{n}"), lists).await;
    let mut want = Sha256::new();
    for index in (0..n).filter(|&i| !is_failed(i)) {
        want.update(output_text(index).as_bytes());
    }
    (key, bytes, hex::encode(want.finalize()))
}

const CHILD: &str = "BATON_MERGE_MEMORY_CHILD";

/// The store both sides use: the store's own budget bounds its buffers (8 MiB of
/// 1 MiB ranges to read).
fn store_for(config: &aws_config::SdkConfig) -> Store {
    Store::new(baton::aws::s3_client(config))
        .with_part_sizes(5 * MIB, MIB)
        .with_memory(baton::store::TransferMemory {
            read: 8 * MIB,
            write: 16 * MIB,
        })
}

/// Run `child` (this binary's test of that name) with `env`; its `CHILD k=v …` line.
fn run_child(endpoint: &str, env: &[(&str, String)]) -> HashMap<String, String> {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "merge_memory_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, endpoint)
        .env(
            "MALLOC_ARENA_MAX",
            std::env::var("MALLOC_ARENA_MAX").unwrap_or_else(|_| "1".into()),
        )
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("CHILD ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no CHILD line in:\n{stdout}"));
    line.split(' ')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merging_100000_results_takes_no_more_memory_than_10000() {
    let moto = Moto::start();
    let store = store_for(&moto.sdk_config().await);
    moto.create_bucket(BUCKET);
    let dir = std::env::temp_dir().join(format!("baton-merge-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // More sizes for a one-off measurement: BATON_MERGE_MEMORY_SIZES=10000,100000,300000.
    let sizes: Vec<u64> = std::env::var("BATON_MERGE_MEMORY_SIZES")
        .map(|v| v.split(',').map(|n| n.trim().parse().unwrap()).collect())
        .unwrap_or_else(|_| vec![10_000, 100_000]);
    assert!(sizes.len() >= 2 && sizes[1] >= 100_000);
    let mut layouts = Vec::new();
    for &n in &sizes {
        layouts.push(layout(&store, &dir, n).await);
    }

    // The parser alone, on a local file: one of 10,000 entries.
    let local = dir.join("100000-0");
    let local_bytes = std::fs::metadata(&local).unwrap().len();
    let started = std::time::Instant::now();
    let entries = map_results::decode_result_file(
        std::io::BufReader::with_capacity(256 * 1024, std::fs::File::open(&local).unwrap()),
        Outcome::Succeeded,
        |_| Ok(()),
    )
    .unwrap();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "parse alone: {entries} entries, {:.1} MB in {secs:.3} s: {:.0} entries/s, {:.1} MB/s",
        local_bytes as f64 / 1e6,
        entries as f64 / secs,
        local_bytes as f64 / 1e6 / secs
    );
    // The alternative: the whole file to disk first, then parsed from there.
    let pointer = store
        .head(BUCKET, "results/run-100000/SUCCEEDED_0.json")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut reader = store.open(&pointer).await.unwrap();
    let mut file = tokio::fs::File::create(dir.join("download")).await.unwrap();
    tokio::io::copy(&mut reader, &mut file).await.unwrap();
    println!(
        "download of the same file to disk alone: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    std::fs::remove_dir_all(&dir).unwrap();

    let mut peaks = Vec::new();
    for (n, (key, bytes, want)) in sizes.iter().zip(&layouts) {
        let merged = run_child(
            &moto.endpoint,
            &[
                ("MODE", "merge".into()),
                ("KEY", key.clone()),
                ("N", n.to_string()),
            ],
        );
        let read = run_child(
            &moto.endpoint,
            &[
                ("MODE", "read".into()),
                ("PAYLOAD", merged["payload"].clone()),
            ],
        );
        assert_eq!(&read["sha256"], want, "the merged bytes in item order");
        let kib = |m: &HashMap<String, String>, k: &str| m[k].parse::<u64>().unwrap();
        println!(
            "{n} items ({:.1} MB of result files): merge {} s, peak RSS {:.1} MiB (+{:.1} MiB over {:.1}); \
             read back {} s, peak RSS {:.1} MiB (+{:.1} MiB over {:.1})",
            *bytes as f64 / 1e6,
            merged["secs"],
            kib(&merged, "peak_kib") as f64 / 1024.0,
            (kib(&merged, "peak_kib") - kib(&merged, "before_kib")) as f64 / 1024.0,
            kib(&merged, "before_kib") as f64 / 1024.0,
            read["secs"],
            kib(&read, "peak_kib") as f64 / 1024.0,
            (kib(&read, "peak_kib") - kib(&read, "before_kib")) as f64 / 1024.0,
            kib(&read, "before_kib") as f64 / 1024.0,
        );
        peaks.push((kib(&merged, "peak_kib"), kib(&read, "peak_kib")));
    }
    // Ten times the items or more: a few MiB more at most, never in proportion
    // (the defaults' caps fill only with the larger run: more slack for them).
    let slack = if std::env::var("BATON_MERGE_MEMORY_DEFAULTS").is_ok() {
        24 * 1024
    } else {
        8 * 1024
    };
    for (n, peak) in sizes.iter().zip(&peaks).skip(1) {
        assert!(
            peak.0 <= peaks[0].0 + slack,
            "merge: peak {} KiB at {n} vs {} KiB at {}",
            peak.0,
            peaks[0].0,
            sizes[0]
        );
        assert!(
            peak.1 <= peaks[0].1 + slack,
            "read: peak {} KiB at {n} vs {} KiB at {}",
            peak.1,
            peaks[0].1,
            sizes[0]
        );
    }
}

/// The parent's child: one merge or one read, in a fresh process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_memory_child() {
    let Ok(endpoint) = std::env::var(CHILD) else {
        return; // run by the test above only
    };
    let env = |k: &str| std::env::var(k).unwrap();
    let store = store_for(&moto_harness::sdk_config_for(&endpoint).await);
    // Warm the client (its connection pool, credentials) before measuring.
    store.client().list_buckets().send().await.unwrap();
    let before = reset_peak();
    let started = std::time::Instant::now();
    let line = match env("MODE").as_str() {
        "merge" => {
            let n: u64 = env("N").parse().unwrap();
            let results = MapResults::Manifest {
                bucket: BUCKET.into(),
                key: env("KEY"),
            };
            let out = OutputPlace::new(BUCKET, format!("executions/m{n}/merge/"));
            let settings = if std::env::var("BATON_MERGE_MEMORY_DEFAULTS").is_ok() {
                MergeSettings::default()
            } else {
                MergeSettings {
                    uploads_in_flight: 1,
                    spill_buffer_bytes: MIB,
                    ..MergeSettings::default()
                }
            };
            let tolerance = Tolerance::of_map(Some(1.0), None);
            let merged = map_results::merge_with(&store, &results, &out, tolerance, &settings)
                .await
                .unwrap();
            assert_eq!(merged.counts.total(), n);
            assert_eq!(merged.counts.failed, n / 200);
            assert_eq!(merged.chunks, n / 1_000);
            format!("payload={}", merged.payload.to_json())
        }
        _ => {
            let payload = Payload::parse(&env("PAYLOAD")).unwrap();
            let mut reader = store.read_payload(&payload).await.unwrap();
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let read = reader
                    .read(&mut buf)
                    .await
                    .map_err(baton::error::from_io)
                    .unwrap();
                if read == 0 {
                    break;
                }
                hasher.update(&buf[..read]);
            }
            format!("sha256={}", hex::encode(hasher.finalize()))
        }
    };
    println!(
        "CHILD secs={:.2} before_kib={before} peak_kib={} {line}",
        started.elapsed().as_secs_f64(),
        status_kib("VmHWM:")
    );
}
