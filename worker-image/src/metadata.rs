//! The ECS task metadata endpoint (v4): the task ARN for log lines.

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The task ARN from `$ECS_CONTAINER_METADATA_URI_V4/task`, when the worker runs
/// in ECS. Never fails the worker: `None` on any problem.
pub async fn task_arn() -> Option<String> {
    let base = std::env::var("ECS_CONTAINER_METADATA_URI_V4").ok()?;
    let uri: http::Uri = format!("{}/task", base.trim_end_matches('/'))
        .parse()
        .ok()?;
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let fetch = async {
        let response = client.get(uri).await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        let body = response.into_body().collect().await.ok()?.to_bytes();
        let task: serde_json::Value = serde_json::from_slice(&body).ok()?;
        task["TaskARN"].as_str().map(String::from)
    };
    tokio::time::timeout(Duration::from_secs(2), fetch)
        .await
        .ok()
        .flatten()
}
