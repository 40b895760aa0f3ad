//! offload-output against a real moto S3.

use baton::Payload;
use baton::Store;
use baton::handoff::HandoffConfig;
use moto_harness::{Moto, sample_event as event};
use offload_output::OffloadOutput;
use serde_json::json;
use tokio::io::AsyncReadExt;

async fn setup(moto: &Moto) -> (OffloadOutput, Store) {
    moto.create_bucket("baton-data");
    let store = Store::new(baton::aws::s3_client(&moto.sdk_config().await));
    let handler = OffloadOutput::new(store.clone(), HandoffConfig::for_bucket("baton-data"));
    (handler, store)
}

#[tokio::test]
async fn a_pointer_passes_through_untouched() {
    let moto = Moto::start();
    let (handler, _) = setup(&moto).await;
    let ev = event("offload-output-pointer.json");
    let out = handler.handle(ev.clone()).await.unwrap();
    assert_eq!(serde_json::to_value(&out.payload).unwrap(), ev["result"]);
    assert_eq!(
        out.baton_output,
        "s3://baton-data/executions/demo-pointer/task2/"
    );
}

#[tokio::test]
async fn foreign_json_of_100_kib_is_stored_with_its_sha256() {
    let moto = Moto::start();
    let (handler, store) = setup(&moto).await;
    let ev = event("offload-output-foreign-100k.json");
    let expected = serde_json::to_vec(&ev["result"]).unwrap();
    assert!(expected.len() > 100_000);
    let out = handler.handle(ev).await.unwrap();
    let Payload::S3(pointer) = &out.payload else {
        panic!("{out:?}")
    };
    assert_eq!(pointer.key, "executions/demo-foreign/task1/offloaded");
    assert_eq!(pointer.size, expected.len() as u64);
    assert_eq!(pointer.content_type.as_deref(), Some("application/json"));
    let mut back = Vec::new();
    store
        .open(pointer)
        .await
        .unwrap()
        .read_to_end(&mut back)
        .await
        .unwrap();
    assert_eq!(back, expected);
    assert!(out.baton_input.len() < 1024);
}

#[tokio::test]
async fn small_results_stay_inline() {
    let moto = Moto::start();
    let (handler, _) = setup(&moto).await;
    let out = handler
        .handle(json!({"execution": "e", "result": {"words": 12, "top": ["a", "b"]}}))
        .await
        .unwrap();
    assert_eq!(
        out.payload,
        Payload::Inline(json!({"words": 12, "top": ["a", "b"]}))
    );
    let out = handler
        .handle(json!({"execution": "e", "result": {"inline": "already a payload"}}))
        .await
        .unwrap();
    assert_eq!(out.payload, Payload::Inline(json!("already a payload")));
}

#[tokio::test]
async fn malformed_requests_are_invalid_input() {
    let moto = Moto::start();
    let (handler, _) = setup(&moto).await;
    for bad in [
        json!({"execution": "e"}),
        json!({"result": 1}),
        json!({"execution": "e", "result": {"s3": {"bucket": "b"}}}),
        json!({"execution": "e", "result": 1, "extra": true}),
    ] {
        let err = handler.handle(bad.clone()).await.unwrap_err();
        assert_eq!(err.name(), "Baton.InvalidInput", "{bad}");
    }
}
