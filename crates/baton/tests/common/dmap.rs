//! A Distributed Map's ResultWriter output, written as AWS writes it, for the merge
//! tests: child entries, result files and the manifest that lists them.

#![allow(dead_code)]

use baton::Store;
use serde_json::{Value, json};

pub const MAP_RUN: &str = "arn:aws:states:us-east-1:123456789012:mapRun:baton-Pipeline/Fan:6dbfba93-0000-4000-8000-000000000001";

pub fn execution(index: u64) -> String {
    format!("arn:aws:states:us-east-1:123456789012:execution:baton-Pipeline/Fan:child-{index:06}")
}

/// A SUCCEEDED entry of item `index` whose Baton task returned `output`.
pub fn succeeded(index: u64, output: &Value) -> Value {
    json!({
        "ExecutionArn": execution(index),
        "Input": json!({"index": index, "input": {"n": index, "pad": "item input"}}).to_string(),
        "InputDetails": {"Included": true},
        "Name": format!("child-{index:06}"),
        "Output": output.to_string(),
        "OutputDetails": {"Included": true},
        "RedriveCount": 0,
        "RedriveStatus": "NOT_REDRIVABLE",
        "RedriveStatusReason": "Execution is SUCCEEDED and cannot be redriven",
        "StartDate": "2026-03-06T05:54:39.296Z",
        "StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:baton-Pipeline/Fan",
        "Status": "SUCCEEDED",
        "StopDate": "2026-03-06T05:54:41.112Z"
    })
}

/// A batch's SUCCEEDED entry (`ItemBatcher`): items `first..first+len`.
pub fn succeeded_batch(first: u64, len: u64, output: &Value) -> Value {
    let mut entry = succeeded(first, output);
    let items: Vec<Value> = (first..first + len)
        .map(|i| json!({"index": i, "input": {"n": i}}))
        .collect();
    entry["Input"] = json!(json!({"Items": items, "BatchInput": {"run": "r"}}).to_string());
    entry
}

/// A FAILED entry whose Baton task execution failed with `error` (the child's own
/// error is `States.TaskFailed`, its cause the task execution's description).
pub fn failed(index: u64, error: &str, cause: &str) -> Value {
    let nested = json!({
        "ExecutionArn": format!("arn:aws:states:us-east-1:123456789012:execution:baton-Task:t-{index}"),
        "StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:baton-Task",
        "Status": "FAILED",
        "Error": error,
        "Cause": cause,
    });
    json!({
        "ExecutionArn": execution(index),
        "Input": json!({"index": index, "input": {"n": index}}).to_string(),
        "InputDetails": {"Included": true},
        "Name": format!("child-{index:06}"),
        "Error": "States.TaskFailed",
        "Cause": nested.to_string(),
        "Status": "FAILED",
        "StartDate": "2026-03-06T05:54:39.296Z",
        "StopDate": "2026-03-06T05:54:41.112Z"
    })
}

/// A PENDING entry: item `index` never ran.
pub fn pending(index: u64) -> Value {
    json!({
        "Input": json!({"index": index, "input": {"n": index}}).to_string(),
        "InputDetails": {"Included": true},
        "Status": "PENDING"
    })
}

/// A result file as AWS writes it: a JSON array (or JSON lines).
pub fn file_text(entries: &[Value], lines: bool) -> Vec<u8> {
    if lines {
        entries
            .iter()
            .map(|e| format!("{e}\n"))
            .collect::<String>()
            .into_bytes()
    } else {
        serde_json::to_vec(entries).unwrap()
    }
}

/// Put the result files (list name, file name, bytes) under
/// `<prefix>/<run id>/` and the manifest that lists them; the manifest's key.
pub async fn write_layout(
    store: &Store,
    bucket: &str,
    prefix: &str,
    run_id: &str,
    files: Vec<(&str, String, Vec<u8>)>,
) -> String {
    let dir = format!("{prefix}/{run_id}");
    let mut lists = json!({"FAILED": [], "PENDING": [], "SUCCEEDED": []});
    for (list, name, bytes) in files {
        let key = format!("{dir}/{name}");
        let pointer = store
            .put(bucket, &key, bytes.as_slice(), Some("application/json"))
            .await
            .unwrap();
        lists[list]
            .as_array_mut()
            .unwrap()
            .push(json!({"Key": key, "Size": pointer.size}));
    }
    write_manifest(store, bucket, &dir, lists).await
}

pub async fn write_manifest(store: &Store, bucket: &str, dir: &str, lists: Value) -> String {
    let manifest = json!({
        "DestinationBucket": bucket,
        "MapRunArn": MAP_RUN,
        "ResultFiles": lists,
    });
    let key = format!("{dir}/manifest.json");
    store
        .put(
            bucket,
            &key,
            manifest.to_string().as_bytes(),
            Some("application/json"),
        )
        .await
        .unwrap();
    key
}
