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
    let Payload::S3(pointer) = &out.payload else {
        panic!("{out:?}")
    };
    assert_eq!(
        (pointer.key.as_str(), pointer.size),
        ("inbox/books.txt", 15)
    );
    assert!(pointer.etag.is_some());
    assert_eq!(
        out.baton_output,
        "s3://baton-data/executions/demo-s3-uri/task1/"
    );
    assert_eq!(Payload::parse(&out.baton_input).unwrap(), out.payload);
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
    assert!(matches!(small.payload, Payload::Inline(_)));

    let large_event = event("prepare-input-inline-large.json");
    let text = large_event["input"]["inline"].as_str().unwrap().to_string();
    let large = handler.handle(large_event).await.unwrap();
    let Payload::S3(pointer) = &large.payload else {
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
    let Payload::S3(pointer) = &staged.payload else {
        panic!("{staged:?}")
    };
    assert_eq!(pointer.key, "executions/pipeline-7/task1/input");
    assert_eq!(
        staged.baton_output,
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
    assert_eq!(ok.payload, Payload::S3(written));
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
        matches!(&out.payload, Payload::Manifest(e) if e.len() == 3),
        "{out:?}"
    );
    // Fifty pointers do not fit 8 KiB: the manifest is stored, marked, and reads back.
    let many: Vec<_> = (0..50).map(pointer).collect();
    let out = handler
        .handle(json!({"execution": "fan-2", "input": many, "step": "task"}))
        .await
        .unwrap();
    assert!(out.payload.is_stored_manifest(), "{out:?}");
    let Payload::S3(stored) = &out.payload else {
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
    assert!(matches!(&out.payload, Payload::Manifest(e) if e.len() == 1));
}
