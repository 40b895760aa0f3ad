//! The ECS task metadata endpoint (v4): the task ARN for log lines, and the task's
//! memory limit for the transfer budget.

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::memory::{MemoryLimit, task_metadata_limit};

/// What the worker takes from `$ECS_CONTAINER_METADATA_URI_V4/task`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskMetadata {
    pub task_arn: Option<String>,
    /// The task's `Limits.Memory` (Fargate: the task's memory).
    pub memory_limit: Option<MemoryLimit>,
}

impl TaskMetadata {
    pub fn from_json(task: &serde_json::Value) -> TaskMetadata {
        TaskMetadata {
            task_arn: task["TaskARN"].as_str().map(String::from),
            memory_limit: task_metadata_limit(task),
        }
    }
}

/// The task's metadata, when the worker runs in ECS. Never fails the worker:
/// empty on any problem.
pub async fn task() -> TaskMetadata {
    let Ok(base) = std::env::var("ECS_CONTAINER_METADATA_URI_V4") else {
        return TaskMetadata::default();
    };
    let Ok(uri) = format!("{}/task", base.trim_end_matches('/')).parse::<http::Uri>() else {
        return TaskMetadata::default();
    };
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let fetch = async {
        let response = client.get(uri).await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        let body = response.into_body().collect().await.ok()?.to_bytes();
        serde_json::from_slice::<serde_json::Value>(&body).ok()
    };
    match tokio::time::timeout(Duration::from_secs(2), fetch).await {
        Ok(Some(task)) => TaskMetadata::from_json(&task),
        _ => TaskMetadata::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_task_arn_and_memory_from_a_fargate_task_response() {
        // The shape of AWS's example response (task metadata v4, Fargate).
        let task = serde_json::json!({
            "Cluster": "arn:aws:ecs:us-west-2:111122223333:cluster/default",
            "TaskARN": "arn:aws:ecs:us-west-2:111122223333:task/default/e9028f8d5d8e4f258373e7b93ce9a3c3",
            "Limits": {"CPU": 0.25, "Memory": 512},
            "Containers": [{"Name": "worker", "Limits": {"CPU": 2}}]
        });
        let meta = TaskMetadata::from_json(&task);
        assert!(
            meta.task_arn
                .unwrap()
                .ends_with("e9028f8d5d8e4f258373e7b93ce9a3c3")
        );
        assert_eq!(meta.memory_limit.unwrap().bytes, 512 << 20);
        assert_eq!(
            TaskMetadata::from_json(&serde_json::json!({})),
            TaskMetadata::default()
        );
    }
}
