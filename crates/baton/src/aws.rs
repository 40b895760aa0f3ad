//! SDK configuration shared by the Lambdas, the worker and the tools.

use aws_config::{BehaviorVersion, SdkConfig};

/// Load the standard AWS configuration (environment, profile, container and
/// instance credentials; `AWS_ENDPOINT_URL` honoured as every SDK does).
pub async fn load_config() -> SdkConfig {
    aws_config::load_defaults(BehaviorVersion::latest()).await
}

/// Liveness for the small JSON APIs (Step Functions callbacks, ECS): a connection
/// must open within 5 s, an answer start within 10 s, and an attempt end within 15 s;
/// past that the attempt fails and the client's retry policy tries again. The SDK's
/// defaults set no read or attempt timeout: an answer that stalls and never ends
/// would hold a heartbeat or a callback forever (seen while building the fault hop,
/// whose stalls end in a reset, so the soak itself never hangs). AWS's
/// "standard" defaults mode uses a 3.1 s connect timeout:
/// <https://docs.aws.amazon.com/sdkref/latest/guide/feature-smart-config-defaults.html>.
pub fn api_timeouts() -> aws_smithy_types::timeout::TimeoutConfig {
    use std::time::Duration;
    aws_smithy_types::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(10))
        .operation_attempt_timeout(Duration::from_secs(15))
        .build()
}

/// An ECS client with [`api_timeouts`].
#[cfg(feature = "ecs")]
pub fn ecs_client(config: &SdkConfig) -> aws_sdk_ecs::Client {
    let conf = aws_sdk_ecs::config::Builder::from(config)
        .timeout_config(api_timeouts())
        .build();
    aws_sdk_ecs::Client::from_conf(conf)
}

/// The tasks of `cluster` meant to run (ListTasks, desired status RUNNING, every
/// page), only those with this `startedBy` if given; an error as its display chain.
#[cfg(feature = "ecs")]
pub async fn running_task_arns(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    started_by: Option<&str>,
) -> Result<Vec<String>, String> {
    let mut arns = Vec::new();
    let mut pages = ecs
        .list_tasks()
        .cluster(cluster)
        .set_started_by(started_by.map(str::to_string))
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Running)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| crate::error::display_chain(&e))?;
        arns.extend(page.task_arns().iter().cloned());
    }
    Ok(arns)
}

/// DescribeTasks for any number of tasks, 100 (the API's limit) at a time.
#[cfg(feature = "ecs")]
pub async fn describe_tasks(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    arns: &[String],
) -> Result<Vec<aws_sdk_ecs::types::Task>, String> {
    let mut tasks = Vec::new();
    for batch in arns.chunks(100) {
        let described = ecs
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(batch.to_vec()))
            .send()
            .await
            .map_err(|e| crate::error::display_chain(&e))?;
        tasks.extend(described.tasks().iter().cloned());
    }
    Ok(tasks)
}

/// Is the S3 endpoint overridden (a local emulator, a VPC endpoint URL)?
fn s3_endpoint_overridden(config: &SdkConfig) -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty());
    config.endpoint_url().is_some() || set("AWS_ENDPOINT_URL") || set("AWS_ENDPOINT_URL_S3")
}

/// An S3 client; path-style addressing when the endpoint is overridden, since
/// `bucket.localhost` and similar virtual hosts do not resolve.
///
/// Liveness is set explicitly rather than left to defaults: a connection must open
/// within 10 s and an answer start within 60 s, and a body (either way) that moves
/// no byte for 20 s fails the request, so the SDK retries it (uploads) or the store
/// resumes it (downloads). Without these, a stalled body waits forever.
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::StalledStreamProtectionConfig;
    use aws_sdk_s3::config::timeout::TimeoutConfig;
    use std::time::Duration;

    let conf = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(s3_endpoint_overridden(config))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .read_timeout(Duration::from_secs(60))
                .build(),
        )
        .stalled_stream_protection(
            StalledStreamProtectionConfig::enabled()
                .grace_period(Duration::from_secs(20))
                .build(),
        )
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}
