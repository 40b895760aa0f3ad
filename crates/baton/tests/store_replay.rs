//! S3 error mapping over recorded HTTP: what a real account answers that moto does not.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_types::body::SdkBody;
use baton::Store;
use baton::payload::S3Pointer;

const ACCESS_DENIED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>R</RequestId><HostId>H</HostId></Error>"#;

fn store(status: u16, body: &str) -> (Store, StaticReplayClient) {
    let request = http::Request::builder()
        .uri("https://b.s3.us-east-1.amazonaws.com/k")
        .body(SdkBody::empty())
        .unwrap();
    let response = http::Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(SdkBody::from(body.to_string()))
        .unwrap();
    // Retries would replay the same answer; one event per attempt is enough to see
    // that a 403 is not retried.
    let http = StaticReplayClient::new(vec![ReplayEvent::new(request, response)]);
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .http_client(http.clone())
        .build();
    (Store::new(aws_sdk_s3::Client::from_conf(config)), http)
}

#[tokio::test]
async fn a_403_on_head_is_an_integrity_failure_not_a_retried_service_error() {
    // Without s3:ListBucket, S3 answers a missing key with 403 AccessDenied (HeadObject
    // has no body, so only the status tells).
    let (store, http) = store(403, "");
    let err = store.head("b", "inbox/missing.txt").await.unwrap_err();
    assert_eq!(err.name(), "Baton.InputIntegrity", "{err}");
    assert!(err.to_string().contains("s3:ListBucket"), "{err}");
    assert_eq!(http.actual_requests().count(), 1);
}

#[tokio::test]
async fn a_403_on_get_is_an_integrity_failure() {
    let (store, http) = store(403, ACCESS_DENIED);
    let pointer = S3Pointer {
        bucket: "b".into(),
        key: "executions/e/task1/output".into(),
        size: 3,
        sha256: Some("0".repeat(64)),
        etag: None,
        version_id: None,
        content_type: None,
    };
    let err = store.open(&pointer).await.err().expect("an error");
    assert_eq!(err.name(), "Baton.InputIntegrity", "{err}");
    assert_eq!(http.actual_requests().count(), 1);
}
