//! Merge a Distributed Map's results (its `ResultWriter` output in S3) into one
//! Baton manifest, in item order, in memory that does not grow with the items.
//!
//! A Distributed Map runs one child execution per item (or per batch, with
//! `ItemBatcher`) and its ResultWriter writes `<Prefix>/<map run id>/manifest.json`,
//! which lists result files by status (`SUCCEEDED_0.json`, `FAILED_0.json`,
//! `PENDING_0.json`, …), each a JSON array (or JSON lines) of child entries. In
//! Baton's pipelines a child's input is `{"index": n, "input": <item>}` (or a batch
//! `{"Items": [{"index": n, …}, …], "BatchInput": …}`) and a succeeded child's
//! output is its Baton task's output Payload.
//!
//! [`merge`] streams every result file (never one whole: AWS splits them only at
//! gigabytes), spills each child's result to a temporary file of its index range,
//! then takes the ranges in order: successes become stored chunk manifests of at
//! most [`MergeSettings::chunk_items`] items each, failed and never-run items lines
//! of `failed.jsonl`. The result is a manifest of the chunk manifests, in item
//! order (stored as well when it is large), which [`Store::read_payload`] reads as
//! the items' outputs one after another, each verified.

mod decode;
mod frame;
mod report;
mod spill;

use std::path::{Path, PathBuf};

use futures::StreamExt;
use serde::Deserialize;
use tokio::io::AsyncReadExt;

use crate::error::Error;
use crate::payload::{MANIFEST_CONTENT_TYPE, Payload, S3Location, S3Pointer};
use crate::store::{MANIFEST_MAX_BYTES, Store};

pub use decode::{
    ChildResult, FAILURE_CAUSE_MAX_CHARS, Failure, Items, Outcome, decode_result_file,
};
pub use report::{ITEMS_FAILED_CAUSE_MAX_CHARS, Tolerance};
pub use spill::Counts;

/// The largest ResultWriter `manifest.json` read (it lists files of up to gigabytes
/// each: 4 MiB is tens of thousands of them).
pub const RESULT_MANIFEST_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// A merged manifest of chunk manifests stays inline up to this many characters
/// (a quarter of a state's 256 KiB); a larger one is stored.
pub const INLINE_MANIFEST_MAX_CHARS: usize = 64 * 1024;

/// Content type of the failure list (JSON lines).
pub const FAILURE_LIST_CONTENT_TYPE: &str = "application/x-ndjson";

/// Where a Distributed Map's ResultWriter output is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapResults {
    /// Its `manifest.json` (the Map state's output names it:
    /// `ResultWriterDetails.Bucket` and `.Key`).
    Manifest { bucket: String, key: String },
    /// The ResultWriter's `Prefix`: the one `<prefix>/<map run id>/manifest.json`
    /// under it is merged (the newest, logged, if there are several). For a Map Run
    /// that failed, whose Map state has no output to name the manifest.
    Prefix { bucket: String, prefix: String },
}

impl MapResults {
    /// `s3://bucket/…/manifest.json` names the manifest; any other
    /// `s3://bucket/prefix` is a prefix.
    pub fn from_uri(uri: &str) -> Result<MapResults, Error> {
        let location = S3Location::parse(uri)?;
        Ok(
            if location.key == "manifest.json" || location.key.ends_with("/manifest.json") {
                MapResults::Manifest {
                    bucket: location.bucket,
                    key: location.key,
                }
            } else {
                MapResults::Prefix {
                    bucket: location.bucket,
                    prefix: location.key,
                }
            },
        )
    }

    /// From a Distributed Map state's output with a ResultWriter:
    /// `{"MapRunArn": …, "ResultWriterDetails": {"Bucket": …, "Key": …}}`.
    pub fn from_map_output(output: &serde_json::Value) -> Result<MapResults, Error> {
        let details = &output["ResultWriterDetails"];
        match (details["Bucket"].as_str(), details["Key"].as_str()) {
            (Some(bucket), Some(key)) if !bucket.is_empty() && !key.is_empty() => {
                Ok(MapResults::Manifest {
                    bucket: bucket.into(),
                    key: key.into(),
                })
            }
            _ => Err(Error::InvalidInput(
                "not a Distributed Map's output with a ResultWriter: no ResultWriterDetails.Bucket and .Key"
                    .into(),
            )),
        }
    }
}

/// Where a merge writes what it makes: `<prefix>chunks/<n>.json` (the chunk
/// manifests), `<prefix>manifest.json` (the list of them, when too large to return
/// inline) and `<prefix>failed.jsonl`. A prefix that does not end in `/` gets one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputPlace {
    pub bucket: String,
    pub prefix: String,
}

impl OutputPlace {
    pub fn new(bucket: impl Into<String>, prefix: impl Into<String>) -> OutputPlace {
        OutputPlace {
            bucket: bucket.into(),
            prefix: prefix.into(),
        }
    }

    fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() || self.prefix.ends_with('/') {
            format!("{}{name}", self.prefix)
        } else {
            format!("{}/{name}", self.prefix)
        }
    }
}

/// How a merge works; the defaults suit a Lambda or a small task.
#[derive(Debug, Clone)]
pub struct MergeSettings {
    /// Where the temporary files go (a directory of its own is made in it and
    /// removed after): [`std::env::temp_dir`] by default. They take about the size
    /// of the outputs' Payloads' JSON, not of the result files.
    pub temp_dir: PathBuf,
    /// Items a chunk manifest covers at most (one index range).
    pub chunk_items: u64,
    /// Bytes a chunk manifest's JSON takes at most (a range's successes past it go
    /// to a further chunk); well under [`MANIFEST_MAX_BYTES`], which a reader loads.
    pub chunk_max_bytes: usize,
    /// Results buffered in memory before they are appended to their range files.
    pub spill_buffer_bytes: usize,
    /// Chunk manifests uploading at once.
    pub uploads_in_flight: usize,
}

impl Default for MergeSettings {
    fn default() -> MergeSettings {
        MergeSettings {
            temp_dir: std::env::temp_dir(),
            chunk_items: 1_000,
            chunk_max_bytes: 4 * 1024 * 1024,
            spill_buffer_bytes: 4 * 1024 * 1024,
            uploads_in_flight: 4,
        }
    }
}

/// What a merge made.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The succeeded items' outputs in item order: `{"manifest": [<stored chunk
    /// manifest>, …]}`, or a pointer to that manifest stored (content type
    /// [`MANIFEST_CONTENT_TYPE`]) when it is longer than
    /// [`INLINE_MANIFEST_MAX_CHARS`]. Empty when no item succeeded.
    pub payload: Payload,
    /// Items by outcome (a batch counts its items).
    pub counts: Counts,
    /// Chunk manifests written.
    pub chunks: u64,
    /// `s3://…/failed.jsonl` when any item failed or did not run: a line an item,
    /// `{"index", "status", "execution", "error", "cause", "taskExecution"?}`.
    pub failure_list: Option<String>,
    /// The ResultWriter manifest merged, `s3://…/manifest.json`.
    pub results: String,
    /// Its Map Run, when the manifest names it.
    pub map_run_arn: Option<String>,
}

/// Merge the ResultWriter output at `results` into a manifest in item order under
/// `out`, with the default [`MergeSettings`]. More items failed or not run than
/// `tolerance` allows is `Err(Error::ItemsFailed)`, whose cause (JSON, at most
/// [`ITEMS_FAILED_CAUSE_MAX_CHARS`]) gives the counts, the first failures and the
/// failure list's URI.
pub async fn merge(
    store: &Store,
    results: &MapResults,
    out: &OutputPlace,
    tolerance: Tolerance,
) -> Result<Merged, Error> {
    merge_with(store, results, out, tolerance, &MergeSettings::default()).await
}

/// [`merge`] with settings of one's own.
pub async fn merge_with(
    store: &Store,
    results: &MapResults,
    out: &OutputPlace,
    tolerance: Tolerance,
    settings: &MergeSettings,
) -> Result<Merged, Error> {
    tolerance.validate()?;
    if out.bucket.is_empty() {
        return Err(Error::InvalidInput("a merge needs an output bucket".into()));
    }
    let at = locate(store, results).await?;
    let manifest = read_result_manifest(store, &at).await?;
    let bucket = manifest
        .destination_bucket
        .clone()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| at.bucket.clone());
    let work = WorkDir::create(&settings.temp_dir)?;

    let mut spill = spill::Spill::new(
        work.path(),
        settings.chunk_items,
        settings.spill_buffer_bytes,
    );
    for (list, files) in &manifest.result_files {
        let outcome = Outcome::of_list(list);
        for file in files {
            spill = read_result_file(store, &bucket, file, outcome, spill).await?;
        }
    }
    let counts = spill.counts;
    let over = tolerance.exceeded(counts.total(), counts.not_done());
    tracing::info!(
        results = %at.uri(),
        succeeded = counts.succeeded,
        failed = counts.failed,
        pending = counts.pending,
        executions = counts.executions,
        "read the Map's results; ordering them"
    );

    let failures_path = work.path().join("failed.jsonl");
    let (summary, chunks) =
        ordered_pass(store, out, spill, !over, settings, &failures_path).await?;
    let failure_list = if summary.failure_lines > 0 {
        let file = tokio::fs::File::open(&failures_path)
            .await
            .map_err(|e| Error::service("temp", "open", e))?;
        let pointer = store
            .put(
                &out.bucket,
                &out.key("failed.jsonl"),
                file,
                Some(FAILURE_LIST_CONTENT_TYPE),
            )
            .await?;
        Some(pointer.uri())
    } else {
        None
    };
    drop(work);

    if over {
        return Err(Error::ItemsFailed(report::items_failed_cause(
            &counts,
            &tolerance,
            failure_list.as_deref(),
            manifest.map_run_arn.as_deref(),
            &summary.first_failures,
        )));
    }
    let chunk_count = chunks.len() as u64;
    let payload = list_of_chunks(store, out, chunks).await?;
    tracing::info!(
        items = summary.items,
        chunks = chunk_count,
        failures = failure_list.as_deref().unwrap_or("none"),
        "merged the Map's results in item order"
    );
    Ok(Merged {
        payload,
        counts,
        chunks: chunk_count,
        failure_list,
        results: at.uri(),
        map_run_arn: manifest.map_run_arn,
    })
}

/// The ResultWriter's `manifest.json`, as far as Baton reads it.
#[derive(Debug, Deserialize)]
struct ResultManifest {
    #[serde(rename = "DestinationBucket", default)]
    destination_bucket: Option<String>,
    #[serde(rename = "MapRunArn", default)]
    map_run_arn: Option<String>,
    /// By list name (`SUCCEEDED`, `FAILED`, `PENDING`; any other is read as failed).
    #[serde(rename = "ResultFiles")]
    result_files: std::collections::BTreeMap<String, Vec<ResultFile>>,
}

#[derive(Debug, Deserialize)]
struct ResultFile {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Size", default)]
    size: Option<u64>,
}

/// The manifest a [`MapResults`] names: itself, or the newest under a prefix.
async fn locate(store: &Store, results: &MapResults) -> Result<S3Location, Error> {
    let (bucket, prefix) = match results {
        MapResults::Manifest { bucket, key } => {
            return Ok(S3Location {
                bucket: bucket.clone(),
                key: key.clone(),
            });
        }
        MapResults::Prefix { bucket, prefix } => (bucket, prefix),
    };
    let prefix = if prefix.is_empty() || prefix.ends_with('/') {
        prefix.clone()
    } else {
        format!("{prefix}/")
    };
    let mut found: Vec<(Option<aws_smithy_types::DateTime>, String)> = Vec::new();
    let mut pages = store
        .client()
        .list_objects_v2()
        .bucket(bucket)
        .prefix(&prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::service("s3", "ListObjectsV2", e))?;
        for object in page.contents() {
            let Some(key) = object.key() else { continue };
            let is_manifest = key[prefix.len()..]
                .strip_suffix("/manifest.json")
                .is_some_and(|run| !run.is_empty() && !run.contains('/'));
            if is_manifest {
                found.push((object.last_modified().copied(), key.to_string()));
            }
        }
    }
    found.sort_by(|a, b| {
        let time = |t: &Option<aws_smithy_types::DateTime>| t.map(|t| t.as_nanos()).unwrap_or(0);
        time(&a.0).cmp(&time(&b.0)).then_with(|| a.1.cmp(&b.1))
    });
    let count = found.len();
    let Some((_, key)) = found.pop() else {
        return Err(Error::InputIntegrity(format!(
            "no ResultWriter manifest (<map run id>/manifest.json) under s3://{bucket}/{prefix}"
        )));
    };
    if count > 1 {
        tracing::warn!(
            prefix = %format!("s3://{bucket}/{prefix}"),
            manifests = count,
            chosen = %key,
            "several ResultWriter manifests under the prefix (a Map run more than once); merging the newest"
        );
    }
    Ok(S3Location {
        bucket: bucket.clone(),
        key,
    })
}

async fn read_result_manifest(store: &Store, at: &S3Location) -> Result<ResultManifest, Error> {
    let pointer = store.head(&at.bucket, &at.key).await?;
    if pointer.size > RESULT_MANIFEST_MAX_BYTES {
        return Err(Error::InvalidInput(format!(
            "{} is {} bytes: a ResultWriter manifest of more than {RESULT_MANIFEST_MAX_BYTES} is not read",
            at.uri(),
            pointer.size
        )));
    }
    let mut reader = store.open(&pointer).await?;
    let mut text = Vec::with_capacity(pointer.size as usize);
    reader
        .read_to_end(&mut text)
        .await
        .map_err(crate::error::from_io)?;
    let manifest: ResultManifest = serde_json::from_slice(&text).map_err(|e| {
        Error::InvalidInput(format!("{} is not a ResultWriter manifest: {e}", at.uri()))
    })?;
    if let Some(empty) = manifest
        .result_files
        .values()
        .flatten()
        .find(|f| f.key.is_empty())
    {
        return Err(Error::InvalidInput(format!(
            "{} lists a result file with an empty key ({empty:?})",
            at.uri()
        )));
    }
    Ok(manifest)
}

/// Read one result file (pinned to the object its first byte came from, its size
/// checked) and spill its entries; the parsing runs on a blocking thread, fed by
/// the store's parallel ranged read.
async fn read_result_file(
    store: &Store,
    bucket: &str,
    file: &ResultFile,
    outcome: Outcome,
    mut spill: spill::Spill,
) -> Result<spill::Spill, Error> {
    let pointer = store.head(bucket, &file.key).await?;
    let uri = pointer.uri();
    if let Some(size) = file.size
        && size != pointer.size
    {
        return Err(Error::InputIntegrity(format!(
            "{uri} has {} bytes; the ResultWriter manifest says {size}",
            pointer.size
        )));
    }
    let reader = store.open(&pointer).await?;
    let handle = tokio::runtime::Handle::current();
    let started = std::time::Instant::now();
    let (spill, entries) = tokio::task::spawn_blocking(move || {
        let bridge = BlockingRead {
            inner: reader,
            handle,
        };
        let buffered = std::io::BufReader::with_capacity(256 * 1024, bridge);
        let entries = decode_result_file(buffered, outcome, |result| spill.push(result))?;
        Ok::<_, Error>((spill, entries))
    })
    .await
    .map_err(|e| Error::Service {
        service: "merge",
        operation: "read",
        message: format!("reading a result file ended abnormally: {e}"),
    })?
    .map_err(|e| within(&uri, e))?;
    tracing::info!(file = %uri, bytes = pointer.size, entries, secs = started.elapsed().as_secs_f64(), "read a result file");
    Ok(spill)
}

/// An error about a file's content, saying which file.
fn within(uri: &str, e: Error) -> Error {
    match e {
        Error::InvalidInput(m) if !m.contains(uri) => Error::InvalidInput(format!("{uri}: {m}")),
        Error::InputIntegrity(m) if !m.contains(uri) => {
            Error::InputIntegrity(format!("{uri}: {m}"))
        }
        other => other,
    }
}

/// An async reader read from a blocking thread (the JSON parser's): each read waits
/// on the runtime, whose tasks fetch the ranges meanwhile.
struct BlockingRead {
    inner: crate::store::VerifiedReader,
    handle: tokio::runtime::Handle,
}

impl std::io::Read for BlockingRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.handle.block_on(self.inner.read(buf))
    }
}

/// The ordering pass (on a blocking thread) and the uploads of the chunks it makes,
/// a few at a time, kept in order.
async fn ordered_pass(
    store: &Store,
    out: &OutputPlace,
    spill: spill::Spill,
    manifests: bool,
    settings: &MergeSettings,
    failures: &Path,
) -> Result<(spill::PassSummary, Vec<Payload>), Error> {
    let (tx, rx) = tokio::sync::mpsc::channel::<spill::Chunk>(2);
    let chunk_max_bytes = settings.chunk_max_bytes;
    let failures = failures.to_path_buf();
    let pass = tokio::task::spawn_blocking(move || {
        spill.pass(manifests, chunk_max_bytes, &failures, |chunk| {
            tx.blocking_send(chunk).map_err(|_| Error::Service {
                service: "merge",
                operation: "upload",
                message: "the chunk uploads stopped".into(),
            })
        })
    });
    let received = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    // Owned (boxed), so that dropping it drops the receiver.
    let mut uploads = Box::pin(
        received
            .enumerate()
            .map(|(n, chunk)| {
                let key = out.key(&format!("chunks/{n:08}.json"));
                let bucket = out.bucket.clone();
                async move {
                    let pointer = store
                        .put(
                            &bucket,
                            &key,
                            chunk.json.as_slice(),
                            Some(MANIFEST_CONTENT_TYPE),
                        )
                        .await?;
                    tracing::debug!(
                        key,
                        entries = chunk.entries,
                        bytes = pointer.size,
                        "stored a chunk manifest"
                    );
                    Ok::<_, Error>(Payload::S3(pointer))
                }
            })
            .buffered(settings.uploads_in_flight.max(1)),
    );
    let mut chunks = Vec::new();
    let mut failed = None;
    while let Some(uploaded) = uploads.next().await {
        match uploaded {
            Ok(chunk) => chunks.push(chunk),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    // Dropping the receiver stops the pass at its next chunk.
    drop(uploads);
    let passed = pass.await.map_err(|e| Error::Service {
        service: "merge",
        operation: "order",
        message: format!("the ordering pass ended abnormally: {e}"),
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    Ok((passed?, chunks))
}

/// The manifest of the chunk manifests: inline when short, else stored.
async fn list_of_chunks(
    store: &Store,
    out: &OutputPlace,
    chunks: Vec<Payload>,
) -> Result<Payload, Error> {
    let list = Payload::Manifest(chunks);
    let json = list.to_json();
    if crate::limits::aws_len(&json) <= INLINE_MANIFEST_MAX_CHARS {
        return Ok(list);
    }
    if json.len() as u64 > MANIFEST_MAX_BYTES {
        return Err(Error::OutputTooLarge(format!(
            "the list of chunk manifests takes {} bytes, more than the {MANIFEST_MAX_BYTES} a reader loads; use larger chunks",
            json.len()
        )));
    }
    let pointer: S3Pointer = store
        .put(
            &out.bucket,
            &out.key("manifest.json"),
            json.as_bytes(),
            Some(MANIFEST_CONTENT_TYPE),
        )
        .await?;
    Ok(Payload::S3(pointer))
}

/// A directory of temporary files of one merge, removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create(parent: &Path) -> Result<WorkDir, Error> {
        use std::os::unix::fs::DirBuilderExt;
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = parent.join(format!(
            "baton-merge-{}-{nanos:x}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::service("temp", "create", e))?;
        Ok(WorkDir(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(dir = %self.0.display(), error = %e, "could not remove the merge's temporary files");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn results_are_named_by_uri_or_by_the_map_output() {
        assert_eq!(
            MapResults::from_uri("s3://b/results/0f/manifest.json").unwrap(),
            MapResults::Manifest {
                bucket: "b".into(),
                key: "results/0f/manifest.json".into()
            }
        );
        assert_eq!(
            MapResults::from_uri("s3://b/results").unwrap(),
            MapResults::Prefix {
                bucket: "b".into(),
                prefix: "results".into()
            }
        );
        let output = json!({"MapRunArn": "arn:aws:states:us-east-1:1:mapRun:sm/Map:0f",
            "ResultWriterDetails": {"Bucket": "b", "Key": "r/0f/manifest.json"}});
        assert_eq!(
            MapResults::from_map_output(&output).unwrap(),
            MapResults::Manifest {
                bucket: "b".into(),
                key: "r/0f/manifest.json".into()
            }
        );
        assert!(MapResults::from_map_output(&json!({"MapRunArn": "x"})).is_err());
    }

    #[test]
    fn output_keys_sit_under_the_prefix() {
        assert_eq!(
            OutputPlace::new("b", "e/x/merge/").key("failed.jsonl"),
            "e/x/merge/failed.jsonl"
        );
        assert_eq!(
            OutputPlace::new("b", "e/x/merge").key("failed.jsonl"),
            "e/x/merge/failed.jsonl"
        );
        assert_eq!(
            OutputPlace::new("b", "").key("failed.jsonl"),
            "failed.jsonl"
        );
    }

    #[test]
    fn a_result_manifest_reads_leniently() {
        let text = r#"{"DestinationBucket": "b", "MapRunArn": "arn:m", "ResultFiles": {
            "FAILED": [], "PENDING": [{"Key": "r/PENDING_0.json", "Size": 10}],
            "SUCCEEDED": [{"Key": "r/SUCCEEDED_0.json", "Size": 5}, {"Key": "r/SUCCEEDED_1.json"}],
            "TIMED_OUT": []}, "Extra": 1}"#;
        let m: ResultManifest = serde_json::from_str(text).unwrap();
        assert_eq!(m.result_files["SUCCEEDED"].len(), 2);
        assert_eq!(m.result_files["SUCCEEDED"][1].size, None);
        assert!(serde_json::from_str::<ResultManifest>(r#"{"MapRunArn": "x"}"#).is_err());
    }

    #[test]
    fn the_work_dir_goes_away() {
        let work = WorkDir::create(&std::env::temp_dir()).unwrap();
        std::fs::write(work.path().join("x"), b"1").unwrap();
        let path = work.path().to_path_buf();
        drop(work);
        assert!(!path.exists());
    }
}
