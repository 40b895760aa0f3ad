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

/// The most tasks one ListTasks page returns (100, also when `maxResults` is not
/// sent) and the most one DescribeTasks call takes (`tasks`, up to 100): ECS API
/// reference.
#[cfg(feature = "ecs")]
pub const ECS_PAGE: usize = 100;

/// The ARNs of the tasks of `cluster` that ECS means to run: ListTasks with
/// `desiredStatus` RUNNING, every page (up to 100 tasks each). No other filter: `startedBy`
/// "must be the only filter that you use" (ECS API reference, ListTasks), and
/// Step Functions' `ecs:runTask` integration documents no `StartedBy` to set it
/// with; the tasks' own overrides tell whose they are ([`running_tasks`]). With
/// the number of ListTasks calls made; an error as its display chain.
#[cfg(feature = "ecs")]
pub async fn list_running_tasks(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
) -> Result<(Vec<String>, usize), String> {
    list_tasks_by_desired_status(ecs, cluster, aws_sdk_ecs::types::DesiredStatus::Running).await
}

/// The ARNs of the tasks of `cluster` with this desired status (ListTasks, every page
/// of up to 100), with the number of calls made; an error as its display chain.
#[cfg(feature = "ecs")]
pub async fn list_tasks_by_desired_status(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    status: aws_sdk_ecs::types::DesiredStatus,
) -> Result<(Vec<String>, usize), String> {
    let mut arns = Vec::new();
    let mut calls = 0;
    let mut pages = ecs
        .list_tasks()
        .cluster(cluster)
        .desired_status(status)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        calls += 1;
        let page = page.map_err(|e| crate::error::display_chain(&e))?;
        arns.extend(page.task_arns().iter().cloned());
    }
    Ok((arns, calls))
}

/// The ARNs of the tasks of `cluster` that ECS means to run ([`list_running_tasks`]).
#[cfg(feature = "ecs")]
pub async fn running_task_arns(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
) -> Result<Vec<String>, String> {
    Ok(list_running_tasks(ecs, cluster).await?.0)
}

/// DescribeTasks for any number of tasks, 100 (the API's limit) at a time.
#[cfg(feature = "ecs")]
pub async fn describe_tasks(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    arns: &[String],
) -> Result<Vec<aws_sdk_ecs::types::Task>, String> {
    let mut tasks = Vec::new();
    for batch in arns.chunks(ECS_PAGE) {
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

/// Every task of `cluster` that ECS means to run, described (overrides included),
/// and what finding them cost.
#[cfg(feature = "ecs")]
#[derive(Debug, Clone, Default)]
pub struct RunningTasks {
    pub tasks: Vec<aws_sdk_ecs::types::Task>,
    /// ListTasks calls: one a page of 100, at least one.
    pub list_calls: usize,
    /// DescribeTasks calls: one for each 100 tasks listed.
    pub describe_calls: usize,
}

/// [`list_running_tasks`], then [`describe_tasks`]: for N tasks running in the
/// cluster, ceil(N/100) ListTasks calls (at least one) and ceil(N/100) DescribeTasks
/// calls, whatever the caller then keeps. An error names the operation that failed.
#[cfg(feature = "ecs")]
pub async fn running_tasks(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
) -> Result<RunningTasks, (&'static str, String)> {
    let (arns, list_calls) = list_running_tasks(ecs, cluster)
        .await
        .map_err(|e| ("ListTasks", e))?;
    let tasks = describe_tasks(ecs, cluster, &arns)
        .await
        .map_err(|e| ("DescribeTasks", e))?;
    Ok(RunningTasks {
        tasks,
        list_calls,
        describe_calls: arns.len().div_ceil(ECS_PAGE),
    })
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
