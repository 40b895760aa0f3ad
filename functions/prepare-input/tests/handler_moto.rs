//! prepare-input against a real moto S3.

use baton::Payload;
use baton::Store;
use baton::handoff::HandoffConfig;
use moto_harness::{Moto, sample_event as event};
use prepare_input::PrepareInput;
use serde_json::json;
use tokio::io::AsyncReadExt;

async fn setup(moto: &Moto) -> (PrepareInput, Store) {
    moto.create_bucket("baton-data");
    let store = Store::new(baton::aws::s3_client(&moto.sdk_config().await));
    let handler = PrepareInput::new(store.clone(), HandoffConfig::for_bucket("baton-data"));
    (handler, store)
}

#[tokio::test]
async fn an_s3_uri_is_pinned_by_etag() {
    let moto = Moto::start();
    let (handler, store) = setup(&moto).await;
    store
        .put(
            "baton-data",
            "inbox/books.txt",
            &b"call me ishmael"[..],
            None,
        )
        .await
        .unwrap();
    let out = handler
        .handle(event("prepare-input-s3-uri.json"))
        .await
        .unwrap();
    let Payload::S3(pointer) = &out.input.payload else {
        panic!("{out:?}")
    };
    assert_eq!(
        (pointer.key.as_str(), pointer.size),
        ("inbox/books.txt", 15)
    );
    assert!(pointer.etag.is_some());
    assert_eq!(
        out.input.baton_output,
        "s3://baton-data/executions/demo-s3-uri/task1/"
    );
    assert_eq!(
        Payload::parse(&out.input.baton_input).unwrap(),
        out.input.payload
    );
}

#[tokio::test]
async fn a_missing_object_is_an_integrity_error() {
    let moto = Moto::start();
    let (handler, _) = setup(&moto).await;
    let err = handler
        .handle(event("prepare-input-s3-uri.json"))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Baton.InputIntegrity");
    assert!(
        err.to_string().contains("s3://baton-data/inbox/books.txt"),
        "{err}"
    );
}

#[tokio::test]
async fn small_inline_stays_inline_and_large_inline_is_staged() {
    let moto = Moto::start();
    let (handler, store) = setup(&moto).await;
    let small = handler
        .handle(event("prepare-input-inline-small.json"))
        .await
        .unwrap();
    assert!(matches!(small.input.payload, Payload::Inline(_)));

    let large_event = event("prepare-input-inline-large.json");
    let text = large_event["input"]["inline"].as_str().unwrap().to_string();
    let large = handler.handle(large_event).await.unwrap();
    let Payload::S3(pointer) = &large.input.payload else {
        panic!("{large:?}")
    };
    assert_eq!(pointer.key, "executions/demo-inline-large/input");
    assert_eq!(pointer.size, text.len() as u64);
    assert!(pointer.sha256.is_some());
    let mut back = String::new();
    store
        .open(pointer)
        .await
        .unwrap()
        .read_to_string(&mut back)
        .await
        .unwrap();
    assert_eq!(back, text);

    // A step's input is staged in the step's folder: steps of one pipeline (and a
    // Map's items) may share the execution's folder.
    let mut step_event = event("prepare-input-inline-large.json");
    step_event["step"] = "task1".into();
    step_event["execution"] = "pipeline-7".into();
    let staged = handler.handle(step_event).await.unwrap();
    let Payload::S3(pointer) = &staged.input.payload else {
        panic!("{staged:?}")
    };
    assert_eq!(pointer.key, "executions/pipeline-7/task1/input");
    assert_eq!(
        staged.input.baton_output,
        "s3://baton-data/executions/pipeline-7/task1/"
    );
}

#[tokio::test]
async fn a_pointer_is_checked_against_the_object() {
    let moto = Moto::start();
    let (handler, store) = setup(&moto).await;
    let written = store
        .put("baton-data", "in/x", &b"12345"[..], None)
        .await
        .unwrap();
    let mut wrong = written.clone();
    wrong.size = 6;
    let err = handler
        .handle(json!({"execution": "e", "input": Payload::S3(wrong)}))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Baton.InputIntegrity");
    let ok = handler
        .handle(json!({"execution": "e", "input": Payload::S3(written.clone())}))
        .await
        .unwrap();
    assert_eq!(ok.input.payload, Payload::S3(written));
}

#[tokio::test]
async fn malformed_input_says_what_is_wrong() {
    let moto = Moto::start();
    let (handler, _) = setup(&moto).await;
    let cases = [
        (json!({"input": "s3://b/k"}), "execution"),
        (json!({"execution": "e"}), "input"),
        (
            json!({"execution": "e", "input": 42}),
            "s3://bucket/key URI",
        ),
        (
            json!({"execution": "e", "input": "https://example.com/x"}),
            "expected s3://",
        ),
        (
            json!({"execution": "e", "input": "s3://baton-data/inbox/"}),
            "prefix",
        ),
        (
            json!({"execution": "a/b", "input": "s3://b/k"}),
            "execution name",
        ),
        (
            json!({"execution": "e", "input": {"s3": {"bucket": "b"}}}),
            "malformed",
        ),
        (json!([1, 2]), "expected"),
        (
            json!({"execution": "e", "input": "s3://b/k", "step": "../x"}),
            "step",
        ),
        (
            json!({"execution": "e", "input": "s3://b/k", "container": "a b"}),
            "container",
        ),
    ];
    refused_as_invalid(&handler, cases).await;
}

/// Each request is refused with `Baton.InvalidInput`, its message naming what is wrong.
async fn refused_as_invalid(
    handler: &PrepareInput,
    cases: impl IntoIterator<Item = (serde_json::Value, &str)>,
) {
    for (input, says) in cases {
        let err = handler.handle(input.clone()).await.unwrap_err();
        assert_eq!(err.name(), "Baton.InvalidInput", "{input}");
        assert!(err.to_string().contains(says), "{input}: {err}");
    }
}

#[tokio::test]
async fn a_maps_results_become_a_manifest_stored_when_it_would_not_fit() {
    let moto = Moto::start();
    let (handler, store) = setup(&moto).await;
    let pointer = |i: usize| json!({"s3": {"bucket": "baton-data", "key": format!("executions/item-{i}/task/output"), "size": 1, "sha256": "a".repeat(64)}});
    // A few: inline in the override, in item order.
    let few: Vec<_> = (0..3).map(pointer).collect();
    let out = handler
        .handle(json!({"execution": "fan-1", "input": few, "step": "task"}))
        .await
        .unwrap();
    assert!(
        matches!(&out.input.payload, Payload::Manifest(e) if e.len() == 3),
        "{out:?}"
    );
    // Fifty pointers do not fit 8 KiB: the manifest is stored, marked, and reads back.
    let many: Vec<_> = (0..50).map(pointer).collect();
    let out = handler
        .handle(json!({"execution": "fan-2", "input": many, "step": "task"}))
        .await
        .unwrap();
    assert!(out.input.payload.is_stored_manifest(), "{out:?}");
    let Payload::S3(stored) = &out.input.payload else {
        panic!()
    };
    let mut text = String::new();
    store
        .open(stored)
        .await
        .unwrap()
        .read_to_string(&mut text)
        .await
        .unwrap();
    assert!(matches!(Payload::parse(&text).unwrap(), Payload::Manifest(e) if e.len() == 50));
    // One failed item of two: the policy decides.
    let mixed = json!([pointer(0), {"failed": {"Error": "Baton.OutOfMemory", "Cause": "{}"}}]);
    let err = handler
        .handle(json!({"execution": "fan-3", "input": mixed.clone()}))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Baton.ItemsFailed");
    let out = handler
        .handle(json!({"execution": "fan-3", "input": mixed, "toleratedFailurePercentage": 50}))
        .await
        .unwrap();
    assert!(matches!(&out.input.payload, Payload::Manifest(e) if e.len() == 1));
}

/// The reusable task state machine's request: its whole input over its defaults.
fn task_request(task: serde_json::Value) -> serde_json::Value {
    json!({
        "task": task,
        "defaults": {"execution": "run-7", "container": "worker", "step": "task",
                     "toleratedFailurePercentage": 0, "heartbeatSeconds": 300, "timeoutSeconds": 86400}
    })
}

#[tokio::test]
async fn the_task_machines_input_over_its_defaults_is_the_tasks_settings() {
    let moto = Moto::start();
    let (handler, _) = setup(&moto).await;
    let out = handler
        .handle(task_request(json!({
            "taskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/baton-copy:3",
            "input": {"inline": "hello"},
            "step": "resize",
            "heartbeatSeconds": 60,
            "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": "arn:aws:states:us-east-1:123456789012:execution:p:e"
        })))
        .await
        .unwrap();
    let task = out.task.clone().expect("the task's settings");
    assert_eq!(
        (
            task.container.as_str(),
            task.execution.as_str(),
            task.step.as_str()
        ),
        ("worker", "run-7", "resize")
    );
    assert_eq!((task.heartbeat_seconds, task.timeout_seconds), (60, 86400));
    assert!(task.task_definition.ends_with("baton-copy:3"));
    assert_eq!(
        out.input.baton_output,
        "s3://baton-data/executions/run-7/resize/"
    );
    // What the state machine reads back: $.Payload.task.*, batonInput, batonOutput.
    let returned = serde_json::to_value(&out).unwrap();
    assert_eq!(returned["task"]["heartbeatSeconds"], 60);
    assert_eq!(
        returned["task"]["taskDefinition"],
        json!(task.task_definition)
    );
    assert!(returned["batonInput"].is_string() && returned.get("input").is_none());
}

#[tokio::test]
async fn bad_task_settings_fail_before_any_task_starts() {
    let moto = Moto::start();
    let (handler, _) = setup(&moto).await;
    let td = "baton-copy:1";
    let cases = [
        (json!({"input": {"inline": 1}}), "taskDefinition"),
        (
            json!({"taskDefinition": "", "input": {"inline": 1}}),
            "taskDefinition",
        ),
        (
            json!({"taskDefinition": td, "input": {"inline": 1}, "heartbeatSeconds": 0}),
            "heartbeatSeconds",
        ),
        (
            json!({"taskDefinition": td, "input": {"inline": 1}, "heartbeatSeconds": "60"}),
            "heartbeatSeconds",
        ),
        (
            json!({"taskDefinition": td, "input": {"inline": 1}, "heartbeatSeconds": 900, "timeoutSeconds": 900}),
            "must be below timeoutSeconds",
        ),
        (
            json!({"taskDefinition": td, "input": {"inline": 1}, "step": "../x"}),
            "step",
        ),
        (json!({"taskDefinition": td}), "input"),
        (json!([1]), "input must be a JSON object"),
    ];
    let requests = cases
        .into_iter()
        .map(|(task, says)| (task_request(task), says));
    refused_as_invalid(&handler, requests).await;
}

#[tokio::test]
async fn a_batch_of_inputs_is_one_manifest_in_order_each_pinned() {
    let moto = Moto::start();
    let (handler, store) = setup(&moto).await;
    for (key, body) in [
        ("inbox/a.txt", &b"alpha\n"[..]),
        ("inbox/b.txt", &b"beta\n"[..]),
    ] {
        store.put("baton-data", key, body, None).await.unwrap();
    }
    // ItemBatcher's Items, as the Distributed Map example's ItemSelector shapes them.
    let batch = json!({"batch": [
        {"index": 7, "input": "s3://baton-data/inbox/b.txt"},
        {"index": 8, "input": {"inline": "gamma"}},
        {"index": 9, "input": "s3://baton-data/inbox/a.txt"},
    ]});
    let out = handler
        .handle(json!({"execution": "fan-9", "input": batch, "step": "items-7"}))
        .await
        .unwrap();
    let Payload::Manifest(entries) = &out.input.payload else {
        panic!("{out:?}")
    };
    assert_eq!(entries.len(), 3);
    assert!(matches!(&entries[0], Payload::S3(p) if p.key == "inbox/b.txt" && p.etag.is_some()));
    assert_eq!(entries[1], Payload::Inline(json!("gamma")));
    assert!(matches!(&entries[2], Payload::S3(p) if p.key == "inbox/a.txt"));
    for (batch, says) in [
        (json!({"batch": []}), "empty"),
        (json!({"batch": "s3://baton-data/inbox/a.txt"}), "array"),
        (json!({"batch": ["s3://baton-data/inbox/"]}), "prefix"),
        (
            json!({"batch": [{"manifest": [{"inline": 1}]}]}),
            "manifest",
        ),
        (
            json!({"batch": ["s3://baton-data/inbox/missing.txt"]}),
            "missing",
        ),
    ] {
        let err = handler
            .handle(json!({"execution": "fan-9", "input": batch}))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains(says) || err.name() == "Baton.InputIntegrity",
            "{batch}: {err}"
        );
    }
}
