//! Callback error mapping over recorded HTTP: closed tokens, throttling, 5xx.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_sfn::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_types::body::SdkBody;
use baton::{CallbackClient, CallbackOutcome, TaskToken};

fn request() -> http::Request<SdkBody> {
    http::Request::builder()
        .uri("https://states.us-east-1.amazonaws.com/")
        .body(SdkBody::empty())
        .unwrap()
}

fn response(status: u16, body: &str) -> http::Response<SdkBody> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .body(SdkBody::from(body.to_string()))
        .unwrap()
}

fn error_body(code: &str) -> String {
    format!(
        r#"{{"__type":"com.amazonaws.swf.service.v2.model#{code}","message":"{code} (recorded)"}}"#
    )
}

fn client(
    responses: Vec<http::Response<SdkBody>>,
    attempts: u32,
) -> (CallbackClient, StaticReplayClient) {
    let http = StaticReplayClient::new(
        responses
            .into_iter()
            .map(|r| ReplayEvent::new(request(), r))
            .collect(),
    );
    let config = aws_sdk_sfn::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .http_client(http.clone())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(attempts)
                .with_initial_backoff(Duration::from_millis(1))
                .with_max_backoff(Duration::from_millis(5)),
        )
        .build();
    (
        CallbackClient::from_client(aws_sdk_sfn::Client::from_conf(config)),
        http,
    )
}

fn token() -> TaskToken {
    TaskToken::new("AQCEAAAAKgAAAAMAAAAArecorded").unwrap()
}

#[tokio::test]
async fn closed_and_rejected_tokens_are_outcomes_for_every_callback() {
    // A closed token answers TaskTimedOut or TaskDoesNotExist; InvalidToken means the
    // service could not read the token: not "the task had called back".
    for code in ["TaskTimedOut", "TaskDoesNotExist", "InvalidToken"] {
        let closed = if code == "InvalidToken" {
            CallbackOutcome::Rejected { code: code.into() }
        } else {
            CallbackOutcome::AlreadyClosed { code: code.into() }
        };
        let (c, _) = client(vec![response(400, &error_body(code))], 3);
        assert_eq!(
            c.success(&token(), "{}").await.unwrap(),
            closed,
            "success {code}"
        );
        let (c, _) = client(vec![response(400, &error_body(code))], 3);
        assert_eq!(
            c.failure(&token(), "Baton.X", "{}").await.unwrap(),
            closed,
            "failure {code}"
        );
        let (c, http) = client(vec![response(400, &error_body(code))], 3);
        assert_eq!(
            c.heartbeat(&token()).await.unwrap(),
            closed,
            "heartbeat {code}"
        );
        assert_eq!(
            http.actual_requests().count(),
            1,
            "a closed token is not retried"
        );
    }
}

#[tokio::test]
async fn throttling_is_retried_then_delivered() {
    let (c, http) = client(
        vec![
            response(400, &error_body("ThrottlingException")),
            response(400, &error_body("ThrottlingException")),
            response(200, "{}"),
        ],
        5,
    );
    assert_eq!(
        c.success(&token(), "{}").await.unwrap(),
        CallbackOutcome::Delivered
    );
    assert_eq!(http.actual_requests().count(), 3);
}

#[tokio::test]
async fn server_errors_are_retried_then_delivered() {
    let (c, http) = client(
        vec![
            response(500, r#"{"__type":"InternalFailure"}"#),
            response(503, r#"{"__type":"ServiceUnavailable"}"#),
            response(200, "{}"),
        ],
        5,
    );
    assert_eq!(
        c.heartbeat(&token()).await.unwrap(),
        CallbackOutcome::Delivered
    );
    assert_eq!(http.actual_requests().count(), 3);
}

#[tokio::test]
async fn exhausted_retries_are_an_error_naming_the_operation() {
    let (c, http) = client(
        (0..3)
            .map(|_| response(400, &error_body("ThrottlingException")))
            .collect(),
        3,
    );
    let err = c.failure(&token(), "Baton.X", "{}").await.unwrap_err();
    assert_eq!(err.name(), "Baton.ServiceUnavailable");
    assert!(err.to_string().contains("SendTaskFailure"), "{err}");
    assert_eq!(http.actual_requests().count(), 3);
}

#[tokio::test]
async fn validation_errors_are_not_retried() {
    let (c, http) = client(vec![response(400, &error_body("InvalidOutput"))], 5);
    let err = c.success(&token(), "not json").await.unwrap_err();
    assert!(err.to_string().contains("InvalidOutput"), "{err}");
    assert_eq!(http.actual_requests().count(), 1);
}

#[tokio::test]
async fn failure_cuts_error_and_cause_to_the_limits() {
    let (c, http) = client(vec![response(200, "{}")], 1);
    let error = "é".repeat(300);
    let cause = "€".repeat(40_000);
    c.failure(&token(), &error, &cause).await.unwrap();
    let sent = http.actual_requests().next().unwrap();
    let body: serde_json::Value = serde_json::from_slice(sent.body().bytes().unwrap()).unwrap();
    assert_eq!(body["error"].as_str().unwrap().chars().count(), 256);
    assert_eq!(body["cause"].as_str().unwrap().chars().count(), 32_768);
    assert_eq!(body["taskToken"], "AQCEAAAAKgAAAAMAAAAArecorded");
}
