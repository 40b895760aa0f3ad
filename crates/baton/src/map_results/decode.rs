//! A ResultWriter result file's entries, one at a time: each child execution's
//! item indexes, and its output Payload or its failure.
//!
//! A result file is a JSON array of entries (`WriterConfig.OutputType` JSON, the
//! default) or one entry per line (JSONL); either is read from a `BufRead` one entry
//! at a time, never whole (AWS splits result files only at gigabytes): each entry
//! is framed, then parsed from its bytes (`frame`).

use std::io::BufRead;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;
use crate::limits::{SFN_ERROR_MAX_CHARS, truncate_chars};
use crate::payload::Payload;

/// A failed item's cause in the failure list: cut to this many characters.
pub const FAILURE_CAUSE_MAX_CHARS: usize = 1_024;

/// The largest Output text Baton takes from an entry: four times the 262,144
/// characters of any Step Functions state output, in UTF-8 bytes at most.
const OUTPUT_MAX_BYTES: usize = 4 * crate::limits::SFN_PAYLOAD_MAX_CHARS;

/// Which of the ResultWriter's lists a result file is in (`ResultFiles` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// `SUCCEEDED`: the child's Output is the item's output Payload.
    Succeeded,
    /// `FAILED` (and any other list but `PENDING`: timed out, aborted).
    Failed,
    /// `PENDING`: the item never ran (the Map Run failed or was aborted first).
    Pending,
}

impl Outcome {
    /// The outcome of a `ResultFiles` key.
    pub fn of_list(name: &str) -> Outcome {
        match name {
            "SUCCEEDED" => Outcome::Succeeded,
            "PENDING" => Outcome::Pending,
            _ => Outcome::Failed,
        }
    }

    fn status(self) -> &'static str {
        match self {
            Outcome::Succeeded => "SUCCEEDED",
            Outcome::Failed => "FAILED",
            Outcome::Pending => "PENDING",
        }
    }
}

/// The items one child execution ran: one item, or a batch of consecutive items
/// (`ItemBatcher`), ordered by its first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Items {
    pub first: u64,
    pub last: u64,
}

impl Items {
    pub fn count(&self) -> u64 {
        self.last - self.first + 1
    }

    /// "item 7", or "items 7 to 9".
    pub fn describe(&self) -> String {
        if self.first == self.last {
            format!("item {}", self.first)
        } else {
            format!("items {} to {}", self.first, self.last)
        }
    }
}

/// Why an item did not succeed, as its line in the failure list says (without
/// the index, which the line puts first).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// The entry's `Status` (`FAILED`, `TIMED_OUT`, `ABORTED`, `PENDING`), else its
    /// list's.
    pub status: String,
    /// The child execution (the Map's), when the entry names it.
    pub execution: Option<String>,
    /// The child's error: the nested Baton task execution's when the child's cause
    /// describes one (`States.TaskFailed` of a `startExecution.sync`), else its own.
    pub error: Option<String>,
    /// The cause that goes with `error`, cut to [`FAILURE_CAUSE_MAX_CHARS`].
    pub cause: Option<String>,
    /// The nested Baton task execution, when the child's cause describes one.
    #[serde(rename = "taskExecution", skip_serializing_if = "Option::is_none")]
    pub task_execution: Option<String>,
}

/// What a result file says of one child execution.
#[derive(Debug, Clone, PartialEq)]
pub enum ChildResult {
    Succeeded {
        items: Items,
        execution: Option<String>,
        payload: Payload,
    },
    NotDone {
        items: Items,
        outcome: Outcome,
        failure: Failure,
    },
}

impl ChildResult {
    pub fn items(&self) -> Items {
        match self {
            ChildResult::Succeeded { items, .. } | ChildResult::NotDone { items, .. } => *items,
        }
    }
}

/// One entry as the ResultWriter writes it (Transformation `NONE`), as far as Baton
/// reads it; every other field is skipped unread. PascalCase as AWS writes it, and
/// camelCase read as well.
#[derive(Debug, Default, Deserialize)]
struct RawEntry {
    #[serde(rename = "ExecutionArn", alias = "executionArn", default)]
    execution_arn: Option<String>,
    #[serde(rename = "Input", alias = "input", default)]
    input: Option<Value>,
    #[serde(rename = "Output", alias = "output", default)]
    output: Option<Value>,
    #[serde(rename = "Error", alias = "error", default)]
    error: Option<Value>,
    #[serde(rename = "Cause", alias = "cause", default)]
    cause: Option<Value>,
    #[serde(rename = "Status", alias = "status", default)]
    status: Option<Value>,
}

/// A child's input as Baton's ItemSelector and ItemBatcher shape it; the item
/// itself is skipped unread.
#[derive(Deserialize)]
struct ChildInput {
    #[serde(default)]
    index: Option<u64>,
    #[serde(rename = "Items", default)]
    items: Option<Vec<BatchItem>>,
}

#[derive(Deserialize)]
struct BatchItem {
    index: u64,
}

/// The longest entry read: its Input and Output are each at most 262,144
/// characters, which escaping in JSON text can make six bytes each.
const ENTRY_MAX_BYTES: usize = 16 * 1024 * 1024;

/// Decode every entry of a result file of list `outcome`, handing each to `each`
/// as it is read; the number of entries. `Err` at the first entry Baton cannot use
/// (naming its items and execution), or the first error `each` returns.
///
/// Each entry is framed (its bytes found, strings and escapes skipped) and then
/// parsed from that slice: memory holds one entry.
pub fn decode_result_file<R, F>(reader: R, outcome: Outcome, mut each: F) -> Result<u64, Error>
where
    R: BufRead,
    F: FnMut(ChildResult) -> Result<(), Error>,
{
    let mut values = super::frame::Values::new(reader, ENTRY_MAX_BYTES);
    let mut count = 0u64;
    while let Some(bytes) = values.next_value()? {
        let position = count;
        count += 1;
        let entry: RawEntry = serde_json::from_slice(bytes).map_err(|e| {
            Error::InvalidInput(format!(
                "entry {position} is not a child execution's entry: {e}"
            ))
        })?;
        let result = decode_entry(entry, outcome).map_err(|e| match e {
            Error::InvalidInput(m) => Error::InvalidInput(format!("entry {position}: {m}")),
            other => other,
        })?;
        each(result)?;
    }
    Ok(count)
}

/// One entry as what Baton needs of it.
fn decode_entry(entry: RawEntry, outcome: Outcome) -> Result<ChildResult, Error> {
    let execution = entry.execution_arn.clone();
    let named = || execution.as_deref().unwrap_or("(unnamed)").to_string();
    let items = match &entry.input {
        Some(input) => items_of(input)
            .map_err(|m| Error::InvalidInput(format!("execution {}: {m}", named())))?,
        None => {
            return Err(Error::InvalidInput(format!(
                "execution {} has no Input: Baton reads each item's index from it (the \
                 ResultWriter's WriterConfig Transformation must be NONE, the default)",
                named()
            )));
        }
    };
    match outcome {
        Outcome::Succeeded => {
            let payload = output_payload(entry.output).map_err(|m| {
                Error::InvalidInput(format!("{} (execution {}): {m}", items.describe(), named()))
            })?;
            Ok(ChildResult::Succeeded {
                items,
                execution,
                payload,
            })
        }
        Outcome::Failed | Outcome::Pending => Ok(ChildResult::NotDone {
            items,
            outcome,
            failure: failure_of(entry, outcome),
        }),
    }
}

/// The items of a child's input: `{"index": n, "input": …}`, or a batch
/// `{"Items": [{"index": n, …}, …], "BatchInput": …}` of consecutive items. The
/// input is JSON text as the ResultWriter writes it, or JSON itself.
fn items_of(input: &Value) -> Result<Items, String> {
    let parsed = match input {
        Value::String(text) => serde_json::from_str::<ChildInput>(text),
        other => ChildInput::deserialize(other),
    }
    .map_err(|e| {
        format!(
            "its Input is neither {{\"index\": n, \"input\": …}} nor a batch {{\"Items\": [{{\"index\": n, …}}, …]}}: {e}"
        )
    })?;
    match (parsed.index, parsed.items) {
        (Some(index), None) => Ok(Items {
            first: index,
            last: index,
        }),
        (None, Some(batch)) => {
            let first = batch
                .first()
                .ok_or("its Input is a batch of no items")?
                .index;
            for (offset, item) in batch.iter().enumerate() {
                if Some(item.index) != first.checked_add(offset as u64) {
                    return Err(format!(
                        "its batch's items are not consecutive: item {offset} of the batch has index {}, after {first}",
                        item.index
                    ));
                }
            }
            Ok(Items {
                first,
                last: first + (batch.len() as u64 - 1),
            })
        }
        (Some(_), Some(_)) => Err("its Input has both an index and a batch of Items".into()),
        (None, None) => Err(
            "its Input has no index (Baton's ItemSelector gives each item {\"index\": $$.Map.Item.Index, \"input\": …})"
                .into(),
        ),
    }
}

/// A succeeded child's Output as the item's Payload: a Baton task's output (inline
/// data, or a pointer the reader can verify), also when wrapped as
/// `{"output": <Payload>}` or as the task execution's description (`Output`).
fn output_payload(output: Option<Value>) -> Result<Payload, String> {
    let value = match output {
        None | Some(Value::Null) => {
            return Err(
                "has no Output (the ResultWriter's WriterConfig Transformation must be NONE, the default)"
                    .into(),
            );
        }
        Some(Value::String(text)) => parse_output(&text)?,
        Some(value) => value,
    };
    let value = unwrap_output(value)?;
    match Payload::from_value(&value) {
        Ok(Some(Payload::Manifest(_))) => Err(
            "its Output is an inline manifest; a manifest's entries are inline data or pointers"
                .into(),
        ),
        Ok(Some(Payload::S3(pointer))) if pointer.sha256.is_none() && pointer.etag.is_none() => {
            Err(format!(
                "its Output points at {} with neither a sha256 nor an etag: a reader could not verify it",
                pointer.uri()
            ))
        }
        Ok(Some(payload)) => Ok(payload),
        Ok(None) => Err(format!(
            "its Output is not a Baton Payload: {}",
            truncate_chars(&value.to_string(), 200)
        )),
        Err(e) => Err(format!("its Output is not a valid Baton Payload: {e}")),
    }
}

fn parse_output(text: &str) -> Result<Value, String> {
    if text.len() > OUTPUT_MAX_BYTES {
        return Err(format!(
            "its Output is {} bytes, more than any Step Functions state output",
            text.len()
        ));
    }
    serde_json::from_str(text).map_err(|e| format!("its Output is not JSON text: {e}"))
}

/// `{"output": P}` (what a fan-in reads) and a `startExecution.sync` result
/// (`{"ExecutionArn", "Output", …}`, Output as JSON or JSON text) give their Payload.
fn unwrap_output(value: Value) -> Result<Value, String> {
    match value {
        Value::Object(mut fields) if fields.len() == 1 && fields.contains_key("output") => {
            Ok(fields.remove("output").expect("checked"))
        }
        Value::Object(mut fields)
            if fields.contains_key("Output") && fields.contains_key("ExecutionArn") =>
        {
            match fields.remove("Output").expect("checked") {
                Value::String(text) => parse_output(&text),
                other => Ok(other),
            }
        }
        other => Ok(other),
    }
}

/// Text of a field that should be a string (anything else as its JSON).
fn text_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The nested execution a child's cause describes (DescribeExecution's output, as a
/// `startExecution.sync` task's failure carries it): its error, cause and ARN.
fn nested_execution(cause: &str) -> Option<(Option<String>, Option<String>, Option<String>)> {
    if !cause.trim_start().starts_with('{') {
        return None;
    }
    let value: Value = serde_json::from_str(cause).ok()?;
    let fields = value.as_object()?;
    let get = |upper: &str, lower: &str| text_of(fields.get(upper).or_else(|| fields.get(lower)));
    let describes_execution = ["ExecutionArn", "executionArn", "Status", "status"]
        .iter()
        .any(|k| fields.contains_key(*k));
    let error = get("Error", "error");
    let nested_cause = get("Cause", "cause");
    if !describes_execution || (error.is_none() && nested_cause.is_none()) {
        return None;
    }
    Some((error, nested_cause, get("ExecutionArn", "executionArn")))
}

fn failure_of(entry: RawEntry, outcome: Outcome) -> Failure {
    let own_error = text_of(entry.error.as_ref());
    let own_cause = text_of(entry.cause.as_ref());
    let (error, cause, task_execution) = match own_cause.as_deref().and_then(nested_execution) {
        Some((error, cause, arn)) => (error.or(own_error), cause.or(own_cause), arn),
        None => (own_error, own_cause, None),
    };
    Failure {
        status: text_of(entry.status.as_ref()).unwrap_or_else(|| outcome.status().into()),
        execution: entry.execution_arn,
        error: error.map(|e| truncate_chars(&e, SFN_ERROR_MAX_CHARS).to_string()),
        cause: cause.map(|c| truncate_chars(&c, FAILURE_CAUSE_MAX_CHARS).to_string()),
        task_execution,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode_all(text: &str, outcome: Outcome) -> Result<Vec<ChildResult>, Error> {
        let mut out = Vec::new();
        decode_result_file(text.as_bytes(), outcome, |r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }

    fn succeeded(index: u64, output: &Value) -> Value {
        json!({
            "ExecutionArn": format!("arn:aws:states:us-east-1:1:execution:sm/Map:{index}"),
            "Input": json!({"index": index, "input": {"n": index}}).to_string(),
            "InputDetails": {"Included": true},
            "Name": format!("{index}"),
            "Output": output.to_string(),
            "OutputDetails": {"Included": true},
            "RedriveCount": 0,
            "StartDate": "2026-01-01T00:00:00.000Z",
            "StopDate": "2026-01-01T00:00:01.000Z",
            "Status": "SUCCEEDED",
        })
    }

    fn pointer(key: &str) -> Value {
        json!({"s3": {"bucket": "b", "key": key, "size": 3, "sha256": "a".repeat(64)}})
    }

    #[test]
    fn array_and_json_lines_files_give_the_same_entries() {
        let entries = [
            succeeded(2, &json!({"inline": "two"})),
            succeeded(0, &pointer("k0")),
            succeeded(1, &json!({"output": {"inline": 1}})),
        ];
        let array = serde_json::to_string_pretty(&json!(entries)).unwrap();
        let lines: String = entries.iter().map(|e| format!("{e}\n")).collect();
        let a = decode_all(&format!("\n  {array}\n"), Outcome::Succeeded).unwrap();
        let l = decode_all(&lines, Outcome::Succeeded).unwrap();
        assert_eq!(a, l);
        let firsts: Vec<u64> = a.iter().map(|r| r.items().first).collect();
        assert_eq!(firsts, [2, 0, 1]);
        assert!(matches!(&a[2], ChildResult::Succeeded { payload, .. }
            if *payload == Payload::Inline(json!(1))));
        assert!(decode_all("", Outcome::Succeeded).unwrap().is_empty());
        assert!(decode_all("[]", Outcome::Failed).unwrap().is_empty());
    }

    #[test]
    fn a_batch_is_its_consecutive_items_and_anything_else_is_refused() {
        let batch = |indexes: &[u64]| {
            let items: Vec<Value> = indexes
                .iter()
                .map(|i| json!({"index": i, "input": "x"}))
                .collect();
            let mut e = succeeded(0, &json!({"inline": "b"}));
            e["Input"] = json!(json!({"Items": items, "BatchInput": {"k": 1}}).to_string());
            e
        };
        let ok = decode_all(&json!([batch(&[5, 6, 7])]).to_string(), Outcome::Succeeded).unwrap();
        assert_eq!(ok[0].items(), Items { first: 5, last: 7 });
        assert_eq!(ok[0].items().count(), 3);
        for bad in [&[5, 7][..], &[5, 5], &[6, 5], &[]] {
            let err = decode_all(&json!([batch(bad)]).to_string(), Outcome::Succeeded).unwrap_err();
            assert_eq!(err.name(), "Baton.InvalidInput", "{bad:?}: {err}");
        }
        // An Input given as JSON itself (not text) reads the same.
        let mut e = succeeded(4, &json!({"inline": 4}));
        e["Input"] = json!({"index": 4, "input": null});
        assert_eq!(
            decode_all(&json!([e]).to_string(), Outcome::Succeeded).unwrap()[0].items(),
            Items { first: 4, last: 4 }
        );
    }

    #[test]
    fn outputs_that_are_not_verifiable_payloads_name_the_item_and_execution() {
        let no_pin = json!({"s3": {"bucket": "b", "key": "k", "size": 3}});
        let etag_only = json!({"s3": {"bucket": "b", "key": "k", "size": 3, "etag": "\"e\""}});
        assert!(
            decode_all(
                &json!([succeeded(1, &etag_only)]).to_string(),
                Outcome::Succeeded
            )
            .is_ok()
        );
        for (output, says) in [
            (no_pin, "neither a sha256 nor an etag"),
            (json!({"result": 1}), "not a Baton Payload"),
            (json!({"manifest": [{"inline": 1}]}), "inline manifest"),
            (
                json!({"s3": {"bucket": "b", "key": "k"}}),
                "not a valid Baton Payload",
            ),
        ] {
            let err = decode_all(
                &json!([succeeded(9, &output)]).to_string(),
                Outcome::Succeeded,
            )
            .unwrap_err();
            let text = err.to_string();
            assert_eq!(err.name(), "Baton.InvalidInput", "{text}");
            assert!(text.contains(says), "{text}");
            assert!(text.contains("item 9"), "{text}");
            assert!(text.contains("execution:sm/Map:9"), "{text}");
        }
        let mut no_output = succeeded(3, &json!(null));
        no_output.as_object_mut().unwrap().remove("Output");
        let err = decode_all(&json!([no_output]).to_string(), Outcome::Succeeded).unwrap_err();
        assert!(err.to_string().contains("Transformation"), "{err}");
        let mut no_index = succeeded(3, &json!({"inline": 1}));
        no_index["Input"] = json!("{\"input\": 1}");
        let err = decode_all(&json!([no_index]).to_string(), Outcome::Succeeded).unwrap_err();
        assert!(err.to_string().contains("no index"), "{err}");
        for bad in ["x", "[1]", "[{\"Input\": 3}]", "[{},", "{\"a\":1} nope"] {
            assert_eq!(
                decode_all(bad, Outcome::Succeeded).unwrap_err().name(),
                "Baton.InvalidInput",
                "{bad}"
            );
        }
    }

    #[test]
    fn a_sync_task_result_gives_its_output() {
        let description = json!({
            "ExecutionArn": "arn:aws:states:us-east-1:1:execution:baton-Task:x",
            "Output": json!({"inline": "done"}).to_string(),
            "Status": "SUCCEEDED",
        });
        let r = decode_all(
            &json!([succeeded(0, &description)]).to_string(),
            Outcome::Succeeded,
        )
        .unwrap();
        assert!(matches!(&r[0], ChildResult::Succeeded { payload, .. }
            if *payload == Payload::Inline(json!("done"))));
    }

    fn failed(index: u64, error: &str, cause: &str) -> Value {
        json!({
            "ExecutionArn": format!("arn:aws:states:us-east-1:1:execution:sm/Map:{index}"),
            "Input": json!({"index": index, "input": 1}).to_string(),
            "Error": error,
            "Cause": cause,
            "Status": "FAILED",
        })
    }

    #[test]
    fn a_failed_child_reports_the_nested_baton_error_when_its_cause_describes_one() {
        let nested = json!({
            "ExecutionArn": "arn:aws:states:us-east-1:1:execution:baton-Task:abc-task-0",
            "Status": "FAILED",
            "Error": "Baton.WorkerError",
            "Cause": "{\"exitCode\":3}",
        });
        let lower =
            json!({"executionArn": "arn:t", "status": "FAILED", "error": "Baton.OutOfMemory"});
        let text = json!([
            failed(4, "States.TaskFailed", &nested.to_string()),
            failed(5, "States.TaskFailed", &lower.to_string()),
            failed(
                6,
                "Baton.ContainerExited",
                "{\"exitCode\":1,\"cause\":\"x\"}"
            ),
            failed(7, "States.Timeout", &"é".repeat(5_000)),
        ])
        .to_string();
        let r = decode_all(&text, Outcome::Failed).unwrap();
        let failure = |i: usize| match &r[i] {
            ChildResult::NotDone { failure, .. } => failure.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(failure(0).error.as_deref(), Some("Baton.WorkerError"));
        assert_eq!(failure(0).cause.as_deref(), Some("{\"exitCode\":3}"));
        assert_eq!(
            failure(0).task_execution.as_deref(),
            Some("arn:aws:states:us-east-1:1:execution:baton-Task:abc-task-0")
        );
        assert_eq!(
            failure(0).execution.as_deref(),
            Some("arn:aws:states:us-east-1:1:execution:sm/Map:4")
        );
        // Nested error, no nested cause: the child's own cause stays.
        assert_eq!(failure(1).error.as_deref(), Some("Baton.OutOfMemory"));
        assert_eq!(
            failure(1).cause.as_deref(),
            Some(lower.to_string().as_str())
        );
        // A JSON cause that describes no execution is the child's own.
        assert_eq!(failure(2).error.as_deref(), Some("Baton.ContainerExited"));
        assert_eq!(failure(2).task_execution, None);
        // Long causes are cut, by characters.
        assert_eq!(
            failure(3).cause.as_ref().unwrap().chars().count(),
            FAILURE_CAUSE_MAX_CHARS
        );
        assert_eq!(failure(3).status, "FAILED");
    }

    #[test]
    fn pending_entries_are_not_done_with_their_status() {
        let pending = json!([{"Input": "{\"index\": 8, \"input\": 0}", "InputDetails": {"Included": true}, "Status": "PENDING"}]);
        let r = decode_all(&pending.to_string(), Outcome::Pending).unwrap();
        let ChildResult::NotDone {
            items,
            outcome,
            failure,
        } = &r[0]
        else {
            panic!()
        };
        assert_eq!((items.first, *outcome), (8, Outcome::Pending));
        assert_eq!(failure.status, "PENDING");
        assert_eq!(
            (failure.error.clone(), failure.execution.clone()),
            (None, None)
        );
        assert_eq!(Outcome::of_list("TIMED_OUT"), Outcome::Failed);
    }

    /// A verified read that fails at its end (size or sha256) fails the decoding
    /// with its own error, after every entry was read.
    #[test]
    fn a_failed_verification_at_the_end_is_the_error() {
        struct FailsAtEnd(std::io::Cursor<Vec<u8>>);
        impl std::io::Read for FailsAtEnd {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                match self.0.read(buf)? {
                    0 => Err(std::io::Error::other(Error::InputIntegrity(
                        "sha256 differs".into(),
                    ))),
                    n => Ok(n),
                }
            }
        }
        let text = json!([succeeded(0, &json!({"inline": 0}))]).to_string();
        let mut seen = 0;
        let reader = std::io::BufReader::new(FailsAtEnd(std::io::Cursor::new(text.into_bytes())));
        let err = decode_result_file(reader, Outcome::Succeeded, |_| {
            seen += 1;
            Ok(())
        })
        .unwrap_err();
        assert_eq!((err.name(), seen), ("Baton.InputIntegrity", 1), "{err}");
    }

    #[test]
    fn an_error_from_the_receiver_stops_the_read() {
        let text = json!([
            succeeded(0, &json!({"inline": 0})),
            succeeded(1, &json!({"inline": 1}))
        ])
        .to_string();
        let mut seen = 0;
        let err = decode_result_file(text.as_bytes(), Outcome::Succeeded, |_| {
            seen += 1;
            Err(Error::InputIntegrity("duplicate".into()))
        })
        .unwrap_err();
        assert_eq!((err.name(), seen), ("Baton.InputIntegrity", 1));
    }
}
