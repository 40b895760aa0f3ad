//! Item order in bounded memory: every child's result goes to a temporary file of
//! its index range (`chunk_items` items a file, buffered a few MiB at a time);
//! then each range, in order, is sorted in memory by its record headers alone and
//! its records copied out: successes into chunk manifests, failures into the
//! failure list. Memory holds the write buffers, one range's headers and one chunk
//! manifest, whatever the number of items.

use std::collections::{BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::decode::{ChildResult, Items, Outcome};
use crate::error::Error;

/// How many of the first failures (in item order) the pass keeps for a report.
pub(super) const FIRST_FAILURES: usize = 5;

const SUCCEEDED: u8 = 0;
const NOT_DONE: u8 = 1;
/// first (u64), last (u64), kind (u8), execution length (u16), data length (u32).
const HEADER_BYTES: usize = 8 + 8 + 1 + 2 + 4;

/// Items that succeeded, failed, or never ran, counted as the results were read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub succeeded: u64,
    pub failed: u64,
    pub pending: u64,
    /// Child executions (a batch is one).
    pub executions: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.succeeded + self.failed + self.pending
    }

    /// Items that failed or never ran: what the tolerance is checked against.
    pub fn not_done(&self) -> u64 {
        self.failed + self.pending
    }
}

pub(super) struct Spill {
    dir: PathBuf,
    chunk_items: u64,
    buffers: HashMap<u64, Vec<u8>>,
    buffered: usize,
    buffer_max: usize,
    ranges: BTreeSet<u64>,
    pub(super) counts: Counts,
}

/// What the pass found besides the chunks it handed on.
#[derive(Debug, Default)]
pub(super) struct PassSummary {
    /// The failure list's first lines (in item order), as JSON.
    pub first_failures: Vec<Value>,
    /// Lines written to the failure list (one an item).
    pub failure_lines: u64,
    /// Items seen: every index from 0 to this, once.
    pub items: u64,
}

/// A chunk manifest's JSON, `{"manifest":[…]}`, and how many entries it has.
pub(super) struct Chunk {
    pub json: Vec<u8>,
    pub entries: usize,
}

fn temp_error(operation: &'static str, e: std::io::Error) -> Error {
    Error::service("temp", operation, e)
}

impl Spill {
    pub(super) fn new(dir: &Path, chunk_items: u64, buffer_max: usize) -> Spill {
        Spill {
            dir: dir.to_path_buf(),
            chunk_items: chunk_items.max(1),
            buffers: HashMap::new(),
            buffered: 0,
            buffer_max,
            ranges: BTreeSet::new(),
            counts: Counts::default(),
        }
    }

    fn range_path(&self, range: u64) -> PathBuf {
        self.dir.join(format!("range-{range:016x}"))
    }

    /// Keep one child's result for the pass.
    pub(super) fn push(&mut self, result: ChildResult) -> Result<(), Error> {
        let items = result.items();
        let (kind, execution, data) = match result {
            ChildResult::Succeeded {
                payload, execution, ..
            } => {
                self.counts.succeeded += items.count();
                (SUCCEEDED, execution, payload.to_json().into_bytes())
            }
            ChildResult::NotDone {
                outcome, failure, ..
            } => {
                match outcome {
                    Outcome::Pending => self.counts.pending += items.count(),
                    _ => self.counts.failed += items.count(),
                }
                let line = serde_json::to_vec(&failure).expect("a failure serialises");
                (NOT_DONE, failure.execution, line)
            }
        };
        self.counts.executions += 1;
        let execution = execution.unwrap_or_default();
        let execution = crate::limits::truncate_chars(&execution, 2_048).as_bytes();
        let data_len = u32::try_from(data.len()).map_err(|_| {
            Error::InvalidInput(format!(
                "{}: a result of {} bytes",
                items.describe(),
                data.len()
            ))
        })?;
        let range = items.first / self.chunk_items;
        let buffer = self.buffers.entry(range).or_default();
        buffer.extend_from_slice(&items.first.to_le_bytes());
        buffer.extend_from_slice(&items.last.to_le_bytes());
        buffer.push(kind);
        buffer.extend_from_slice(&(execution.len() as u16).to_le_bytes());
        buffer.extend_from_slice(&data_len.to_le_bytes());
        buffer.extend_from_slice(execution);
        buffer.extend_from_slice(&data);
        self.buffered += HEADER_BYTES + execution.len() + data.len();
        self.ranges.insert(range);
        if self.buffered >= self.buffer_max {
            self.flush()?;
        }
        Ok(())
    }

    /// Append every buffer to its range's file, and free the buffers.
    pub(super) fn flush(&mut self) -> Result<(), Error> {
        let buffers = std::mem::take(&mut self.buffers);
        for (range, buffer) in buffers {
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.range_path(range))
                .map_err(|e| temp_error("open", e))?;
            file.write_all(&buffer)
                .map_err(|e| temp_error("write", e))?;
        }
        self.buffered = 0;
        Ok(())
    }

    /// Go through the ranges in order: check that every index from 0 up is there
    /// exactly once, hand each range's successes on as chunk manifests of at most
    /// `chunk_max_bytes` (when `manifests`), and write each failed or pending item
    /// as a line to `failures`.
    pub(super) fn pass(
        mut self,
        manifests: bool,
        chunk_max_bytes: usize,
        failures: &Path,
        mut chunk: impl FnMut(Chunk) -> Result<(), Error>,
    ) -> Result<PassSummary, Error> {
        self.flush()?;
        let mut summary = PassSummary::default();
        let mut lines = FailureList::create(failures)?;
        let mut builder = ChunkBuilder::new(chunk_max_bytes);
        // The next index expected, and who had the one before it.
        let mut next = 0u64;
        let mut previous = String::new();
        for &range in &self.ranges {
            let path = self.range_path(range);
            let file = File::open(&path).map_err(|e| temp_error("open", e))?;
            let records = read_headers(&file, self.chunk_items)?;
            let mut execution = Vec::new();
            let mut data = Vec::new();
            for record in records {
                execution.resize(record.execution_len, 0);
                file.read_exact_at(&mut execution, record.offset)
                    .map_err(|e| temp_error("read", e))?;
                let this = String::from_utf8_lossy(&execution).into_owned();
                let items = Items {
                    first: record.first,
                    last: record.last,
                };
                if record.first < next {
                    return Err(Error::InputIntegrity(format!(
                        "item {} is in the results twice: {} (execution {}) overlaps the result of execution {}",
                        record.first,
                        items.describe(),
                        named(&this),
                        named(&previous)
                    )));
                }
                if record.first > next {
                    return Err(Error::InputIntegrity(format!(
                        "no result file has item {}{}: every item from 0 to {} must have a result (SUCCEEDED, FAILED or PENDING)",
                        next,
                        if record.first - 1 > next {
                            format!(" (nor the {} after it)", record.first - 1 - next)
                        } else {
                            String::new()
                        },
                        record.last
                    )));
                }
                next = record.last + 1;
                previous = this;
                data.resize(record.data_len, 0);
                file.read_exact_at(&mut data, record.offset + record.execution_len as u64)
                    .map_err(|e| temp_error("read", e))?;
                match record.kind {
                    SUCCEEDED if manifests => {
                        if let Some(full) = builder.push(&data) {
                            chunk(full)?;
                        }
                    }
                    SUCCEEDED => {}
                    _ => lines.write(items, &data, &mut summary)?,
                }
            }
            // A chunk never spans two ranges: a chunk is at most `chunk_items` items.
            if let Some(last) = builder.finish() {
                chunk(last)?;
            }
            drop(file);
            let _ = std::fs::remove_file(&path);
        }
        lines.finish()?;
        summary.items = next;
        Ok(summary)
    }
}

fn named(execution: &str) -> &str {
    if execution.is_empty() {
        "(unnamed)"
    } else {
        execution
    }
}

struct Header {
    first: u64,
    last: u64,
    kind: u8,
    /// Where the record's execution starts; its data follows it.
    offset: u64,
    execution_len: usize,
    data_len: usize,
}

/// A range file's record headers, sorted by first index. More records than the
/// range has indexes can only be duplicates: refused before they take memory.
fn read_headers(file: &File, chunk_items: u64) -> Result<Vec<Header>, Error> {
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut headers = Vec::new();
    let mut offset = 0u64;
    let mut raw = [0u8; HEADER_BYTES];
    loop {
        match reader.read_exact(&mut raw) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(temp_error("read", e)),
        }
        let u64_at = |at: usize| u64::from_le_bytes(raw[at..at + 8].try_into().expect("8 bytes"));
        let execution_len = u16::from_le_bytes([raw[17], raw[18]]) as usize;
        let data_len = u32::from_le_bytes(raw[19..23].try_into().expect("4 bytes")) as usize;
        let header = Header {
            first: u64_at(0),
            last: u64_at(8),
            kind: raw[16],
            offset: offset + HEADER_BYTES as u64,
            execution_len,
            data_len,
        };
        let skip = execution_len + data_len;
        reader
            .seek_relative(skip as i64)
            .map_err(|e| temp_error("seek", e))?;
        offset += (HEADER_BYTES + skip) as u64;
        headers.push(header);
        if headers.len() as u64 > chunk_items {
            headers.sort_unstable_by_key(|h| h.first);
            let twice = headers
                .windows(2)
                .find(|w| w[0].first == w[1].first)
                .map(|w| w[0].first)
                .unwrap_or(headers[0].first);
            return Err(Error::InputIntegrity(format!(
                "item {twice} is in the results more than once"
            )));
        }
    }
    headers.sort_unstable_by_key(|h| h.first);
    Ok(headers)
}

/// Builds `{"manifest":[…]}` from Payloads' JSON, at most `max_bytes` a chunk
/// (a single larger entry is a chunk of its own).
struct ChunkBuilder {
    json: Vec<u8>,
    entries: usize,
    max_bytes: usize,
}

const CHUNK_OPEN: &[u8] = b"{\"manifest\":[";
const CHUNK_CLOSE: &[u8] = b"]}";

impl ChunkBuilder {
    fn new(max_bytes: usize) -> ChunkBuilder {
        ChunkBuilder {
            json: CHUNK_OPEN.to_vec(),
            entries: 0,
            max_bytes,
        }
    }

    /// Add an entry; the chunk before it when the entry would take that over the
    /// size.
    fn push(&mut self, entry: &[u8]) -> Option<Chunk> {
        let full = (self.entries > 0
            && self.json.len() + 1 + entry.len() + CHUNK_CLOSE.len() > self.max_bytes)
            .then(|| self.finish())
            .flatten();
        if self.entries > 0 {
            self.json.push(b',');
        }
        self.json.extend_from_slice(entry);
        self.entries += 1;
        full
    }

    fn finish(&mut self) -> Option<Chunk> {
        if self.entries == 0 {
            return None;
        }
        let mut json = std::mem::replace(&mut self.json, CHUNK_OPEN.to_vec());
        json.extend_from_slice(CHUNK_CLOSE);
        let entries = std::mem::take(&mut self.entries);
        Some(Chunk { json, entries })
    }
}

/// The failure list: one JSON line an item, `{"index": n, …the failure}`.
struct FailureList {
    out: BufWriter<File>,
}

impl FailureList {
    fn create(path: &Path) -> Result<FailureList, Error> {
        let file = File::create(path).map_err(|e| temp_error("create", e))?;
        Ok(FailureList {
            out: BufWriter::with_capacity(64 * 1024, file),
        })
    }

    /// `failure` is a JSON object's text; each item's line puts its index first.
    fn write(
        &mut self,
        items: Items,
        failure: &[u8],
        summary: &mut PassSummary,
    ) -> Result<(), Error> {
        let rest = failure
            .strip_prefix(b"{")
            .filter(|r| r.len() > 1)
            .unwrap_or(b"}");
        for index in items.first..=items.last {
            let mut line = format!("{{\"index\":{index}").into_bytes();
            if rest != b"}" {
                line.push(b',');
            }
            line.extend_from_slice(rest);
            if summary.first_failures.len() < FIRST_FAILURES {
                summary
                    .first_failures
                    .push(serde_json::from_slice(&line).expect("a failure line is JSON"));
            }
            line.push(b'\n');
            self.out
                .write_all(&line)
                .map_err(|e| temp_error("write", e))?;
            summary.failure_lines += 1;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<(), Error> {
        self.out.flush().map_err(|e| temp_error("write", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map_results::decode::Failure;
    use crate::payload::Payload;
    use serde_json::json;

    pub(crate) struct TestDir(pub PathBuf);
    impl TestDir {
        pub(crate) fn new(name: &str) -> TestDir {
            let dir = std::env::temp_dir()
                .join(format!("baton-spill-test-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TestDir(dir)
        }
    }
    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn ok(first: u64, last: u64) -> ChildResult {
        ChildResult::Succeeded {
            items: Items { first, last },
            execution: Some(format!("exec-{first}")),
            payload: Payload::Inline(json!(format!("{first}-{last}"))),
        }
    }

    fn not_done(index: u64, outcome: Outcome) -> ChildResult {
        ChildResult::NotDone {
            items: Items {
                first: index,
                last: index,
            },
            outcome,
            failure: Failure {
                status: if outcome == Outcome::Pending {
                    "PENDING"
                } else {
                    "FAILED"
                }
                .into(),
                execution: Some(format!("exec-{index}")),
                error: Some("Baton.WorkerError".into()),
                cause: Some("boom".into()),
                task_execution: None,
            },
        }
    }

    /// The chunks' entries, the summary, the counts and the failure list's text.
    type Passed = (Vec<Vec<Value>>, PassSummary, Counts, String);

    fn run(
        dir: &TestDir,
        results: Vec<ChildResult>,
        chunk_items: u64,
        chunk_max_bytes: usize,
    ) -> Result<Passed, Error> {
        let mut spill = Spill::new(&dir.0, chunk_items, 100);
        for r in results {
            spill.push(r)?;
        }
        let counts = spill.counts;
        let failures = dir.0.join("failed.jsonl");
        let mut chunks = Vec::new();
        let summary = spill.pass(true, chunk_max_bytes, &failures, |c| {
            let v: Value = serde_json::from_slice(&c.json).unwrap();
            let entries = v["manifest"].as_array().unwrap().clone();
            assert_eq!(entries.len(), c.entries);
            chunks.push(entries);
            Ok(())
        })?;
        let lines = std::fs::read_to_string(&failures).unwrap();
        Ok((chunks, summary, counts, lines))
    }

    #[test]
    fn results_come_out_in_item_order_in_chunks_of_index_ranges() {
        let dir = TestDir::new("order");
        // 0..50 shuffled deterministically, with a batch 20..=22 and two failures.
        let mut results: Vec<ChildResult> = (0..50u64)
            .filter(|i| !(21..=22).contains(i) && *i != 7 && *i != 33)
            .map(|i| if i == 20 { ok(20, 22) } else { ok(i, i) })
            .collect();
        results.push(not_done(33, Outcome::Pending));
        results.push(not_done(7, Outcome::Failed));
        let n = results.len();
        for i in 0..n {
            results.swap(i, (i * 7919 + 13) % n);
        }
        let (chunks, summary, counts, lines) = run(&dir, results, 10, 1 << 20).unwrap();
        let flat: Vec<String> = chunks
            .iter()
            .flatten()
            .map(|v| v["inline"].as_str().unwrap().to_string())
            .collect();
        let want: Vec<String> = (0..50u64)
            .filter(|i| !(21..=22).contains(i) && *i != 7 && *i != 33)
            .map(|i| {
                if i == 20 {
                    "20-22".into()
                } else {
                    format!("{i}-{i}")
                }
            })
            .collect();
        assert_eq!(flat, want);
        assert_eq!(chunks.len(), 5, "one chunk per range of 10 indexes");
        assert_eq!(chunks[0].len(), 9, "item 7 failed");
        assert_eq!(
            counts,
            Counts {
                succeeded: 48,
                failed: 1,
                pending: 1,
                executions: 48
            }
        );
        assert_eq!((summary.items, summary.failure_lines), (50, 2));
        let lines: Vec<Value> = lines
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["index"], 7);
        assert_eq!(lines[0]["error"], "Baton.WorkerError");
        assert_eq!(lines[0]["execution"], "exec-7");
        assert_eq!(lines[1]["index"], 33);
        assert_eq!(lines[1]["status"], "PENDING");
        assert_eq!(summary.first_failures, lines);
    }

    #[test]
    fn chunks_are_cut_by_size_too() {
        let dir = TestDir::new("size");
        let results = (0..20).map(|i| ok(i, i)).collect();
        // Each entry is ~16 bytes: about three fit in 64.
        let (chunks, ..) = run(&dir, results, 1000, 64).unwrap();
        assert!(chunks.len() > 4, "{}", chunks.len());
        assert_eq!(chunks.iter().map(Vec::len).sum::<usize>(), 20);
        let (one, ..) = run(&dir, vec![ok(0, 0)], 1000, 1).unwrap();
        assert_eq!(
            one.len(),
            1,
            "an entry larger than the limit is a chunk of its own"
        );
    }

    #[test]
    fn duplicates_overlaps_and_gaps_are_refused_by_name() {
        let cases: Vec<(Vec<ChildResult>, &str)> = vec![
            (
                vec![ok(0, 0), ok(1, 1), ok(1, 1)],
                "item 1 is in the results twice",
            ),
            (vec![ok(0, 2), ok(2, 2)], "item 2 is in the results twice"),
            (
                vec![ok(0, 0), not_done(0, Outcome::Failed)],
                "item 0 is in the results twice",
            ),
            // A batch reaching into the next range.
            (
                vec![ok(0, 11), ok(10, 10)],
                "item 10 is in the results twice",
            ),
            (vec![ok(0, 0), ok(2, 2)], "no result file has item 1"),
            (vec![ok(1, 1)], "no result file has item 0"),
            (
                vec![ok(0, 0), ok(25, 25)],
                "no result file has item 1 (nor the 23 after it)",
            ),
            ((0..30).map(|_| ok(3, 3)).collect(), "more than once"),
        ];
        for (n, (results, says)) in cases.into_iter().enumerate() {
            let dir = TestDir::new(&format!("dupes-{n}"));
            let err = run(&dir, results, 10, 1 << 20).unwrap_err();
            assert_eq!(err.name(), "Baton.InputIntegrity", "{err}");
            assert!(err.to_string().contains(says), "{says}: {err}");
        }
    }

    #[test]
    fn a_failed_batch_is_a_line_an_item_and_nothing_at_all_is_an_empty_pass() {
        let dir = TestDir::new("batch");
        let mut failed = not_done(0, Outcome::Failed);
        if let ChildResult::NotDone { items, .. } = &mut failed {
            items.last = 2;
        }
        let (chunks, summary, counts, lines) =
            run(&dir, vec![failed, ok(3, 3)], 10, 1 << 20).unwrap();
        assert_eq!(chunks.len(), 1);
        assert_eq!((counts.failed, counts.executions), (3, 2));
        assert_eq!(lines.lines().count(), 3);
        assert_eq!(summary.first_failures[2]["index"], 2);
        let (chunks, summary, _, lines) = run(&dir, vec![], 10, 1 << 20).unwrap();
        assert!(chunks.is_empty() && lines.is_empty());
        assert_eq!(summary.items, 0);
    }
}
