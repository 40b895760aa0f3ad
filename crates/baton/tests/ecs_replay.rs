//! Finding the tasks of a cluster over recorded HTTP: the requests themselves, as
//! ECS receives them. A local emulator accepts more than ECS does (moto takes
//! `startedBy` together with `desiredStatus`, and returns every task in one page),
//! so what is sent is checked here, against the ECS API reference.
#![cfg(feature = "ecs")]

use aws_sdk_ecs::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_types::body::SdkBody;
use serde_json::{Value, json};

const CLUSTER: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/baton";

fn request() -> http::Request<SdkBody> {
    http::Request::builder()
        .uri("https://ecs.us-east-1.amazonaws.com/")
        .body(SdkBody::empty())
        .unwrap()
}

fn response(status: u16, body: Value) -> http::Response<SdkBody> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.1")
        .body(SdkBody::from(body.to_string()))
        .unwrap()
}

fn arns(from: usize, to: usize) -> Vec<String> {
    (from..to)
        .map(|i| format!("arn:aws:ecs:us-east-1:123456789012:task/baton/{i:032x}"))
        .collect()
}

fn described(arns: &[String]) -> Value {
    let tasks: Vec<Value> = arns
        .iter()
        .map(|a| json!({"taskArn": a, "clusterArn": CLUSTER, "desiredStatus": "RUNNING"}))
        .collect();
    json!({"tasks": tasks, "failures": []})
}

/// An ECS client answered by `responses` in turn (no retries needed: the errors
/// replayed are not retryable), and the recording of what it sent.
fn client(responses: Vec<http::Response<SdkBody>>) -> (aws_sdk_ecs::Client, StaticReplayClient) {
    let events = responses
        .into_iter()
        .map(|r| ReplayEvent::new(request(), r));
    let http = StaticReplayClient::new(events.collect());
    let credentials = Credentials::new("AKIDTEST", "secret", None, None, "test");
    let config = aws_sdk_ecs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials)
        .http_client(http.clone());
    (aws_sdk_ecs::Client::from_conf(config.build()), http)
}

/// Each request sent: its operation (`X-Amz-Target`) and its JSON body.
fn sent(http: &StaticReplayClient) -> Vec<(String, Value)> {
    http.actual_requests()
        .map(|r| {
            let target = r.headers().get("x-amz-target").unwrap_or_default();
            let operation = target.rsplit('.').next().unwrap_or_default().to_string();
            let body =
                serde_json::from_slice(r.body().bytes().unwrap_or_default()).unwrap_or(Value::Null);
            (operation, body)
        })
        .collect()
}

#[tokio::test]
async fn listing_sends_only_documented_filters_and_reads_every_page() {
    // 150 tasks running: a page of 100 with a nextToken, then a page of 50.
    let (first, second) = (arns(0, 100), arns(100, 150));
    let (ecs, http) = client(vec![
        response(200, json!({"taskArns": first, "nextToken": "page-2"})),
        response(200, json!({"taskArns": second})),
        response(200, described(&first)),
        response(200, described(&second)),
    ]);
    let running = baton::aws::running_tasks(&ecs, CLUSTER).await.unwrap();
    assert_eq!(running.tasks.len(), 150);
    assert_eq!((running.list_calls, running.describe_calls), (2, 2));

    let sent = sent(&http);
    let operations: Vec<&str> = sent.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(
        operations,
        ["ListTasks", "ListTasks", "DescribeTasks", "DescribeTasks"]
    );
    // ListTasks: the cluster, desiredStatus RUNNING, the token of the page before
    // (pages of up to 100 by default, the most ListTasks returns); never startedBy,
    // which "must be the only filter that you use" (ECS API reference, ListTasks).
    assert_eq!(
        sent[0].1,
        json!({"cluster": CLUSTER, "desiredStatus": "RUNNING"})
    );
    assert_eq!(
        sent[1].1,
        json!({"cluster": CLUSTER, "desiredStatus": "RUNNING", "nextToken": "page-2"})
    );
    for (operation, body) in &sent {
        assert!(body.get("startedBy").is_none(), "{operation}: {body}");
    }
    // DescribeTasks: at most 100 tasks a call (its documented maximum), all of them.
    let described: Vec<usize> = sent[2..]
        .iter()
        .map(|(_, b)| b["tasks"].as_array().unwrap().len())
        .collect();
    assert_eq!(described, [100, 50]);
    assert_eq!(sent[2].1["cluster"], CLUSTER);
}

#[tokio::test]
async fn an_empty_cluster_costs_one_list_call_and_no_describe() {
    let (ecs, http) = client(vec![response(200, json!({"taskArns": []}))]);
    let running = baton::aws::running_tasks(&ecs, CLUSTER).await.unwrap();
    assert!(running.tasks.is_empty());
    assert_eq!((running.list_calls, running.describe_calls), (1, 0));
    assert_eq!(sent(&http).len(), 1);
}

#[tokio::test]
async fn a_refused_call_is_an_error_naming_its_operation() {
    let denied = json!({
        "__type": "AccessDeniedException",
        "message": "User: arn:aws:sts::123456789012:assumed-role/watchdog/x is not authorized to perform: ecs:ListTasks on resource: *"
    });
    let (ecs, _) = client(vec![response(400, denied.clone())]);
    let (operation, message) = baton::aws::running_tasks(&ecs, CLUSTER).await.unwrap_err();
    assert_eq!(operation, "ListTasks");
    assert!(message.contains("AccessDenied"), "{message}");

    let (ecs, _) = client(vec![
        response(200, json!({"taskArns": arns(0, 1)})),
        response(
            400,
            json!({"__type": "InvalidParameterException", "message": "recorded"}),
        ),
    ]);
    let (operation, message) = baton::aws::running_tasks(&ecs, CLUSTER).await.unwrap_err();
    assert_eq!(operation, "DescribeTasks");
    assert!(message.contains("InvalidParameter"), "{message}");
}
