//! Handles "ECS Task State Change" events: one EventBridge event, or a batch of them
//! from the SQS queue between the rule and the function (the stack's wiring).

use aws_config::SdkConfig;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use baton::ecs_event::{self, Overrides, TaskStateChange, Verdict};
use baton::{CallbackClient, CallbackOutcome, Error};
use serde::Serialize;
use serde_json::Value;

/// What the watchdog did with an event (the Lambda's result, for the logs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// `failed`, `alreadyClosed`, `rejected` or `ignored`.
    pub action: &'static str,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_arn: Option<String>,
}

/// Was an upload begun before the task stopped? Unknown means no: never abort an
/// upload that may be a retry's.
pub fn begun_before(
    initiated: Option<&aws_smithy_types::DateTime>,
    stopped_at: &aws_smithy_types::DateTime,
) -> bool {
    initiated.is_some_and(|at| at <= stopped_at)
}

pub struct Watchdog {
    callbacks: CallbackClient,
    ecs: aws_sdk_ecs::Client,
    s3: aws_sdk_s3::Client,
    /// Where a task's logs are, with `{task_id}` replaced (`BATON_TASK_LOGS`).
    logs_template: Option<String>,
    /// The stack's bucket and prefix (`BATON_BUCKET`, `BATON_PREFIX`): where an
    /// ended execution's data is. Without it, status changes are ignored.
    handoff: Option<baton::handoff::HandoffConfig>,
    /// The stack's cluster (`BATON_CLUSTER`): an ended execution's tasks still
    /// running there are stopped. Without it, none is.
    cluster: Option<String>,
}

impl Watchdog {
    pub fn new(config: &SdkConfig, logs_template: Option<String>) -> Watchdog {
        Watchdog {
            callbacks: CallbackClient::new(config),
            ecs: baton::aws::ecs_client(config),
            s3: baton::aws::s3_client(config),
            logs_template,
            handoff: None,
            cluster: None,
        }
    }

    /// Stop the tasks of executions that end, in this cluster.
    pub fn with_cluster(mut self, cluster: impl Into<String>) -> Watchdog {
        self.cluster = Some(cluster.into());
        self
    }

    /// Clean up after the executions that end (their status change events).
    pub fn with_handoff(mut self, handoff: baton::handoff::HandoffConfig) -> Watchdog {
        self.handoff = Some(handoff);
        self
    }

    /// One invocation. `{"stoppedTask": <States.TaskFailed cause>}` from the .sync
    /// pipeline: the Baton error for it. `{"taskTimedOut": …}` from the callback
    /// pipeline: a task state timed out; stop its tasks, answer the typed error
    /// ([`crate::timed_out`]). From the stack's SQS queue: a batch, answered with the
    /// messages to retry (`ReportBatchItemFailures`): they come back after the
    /// queue's visibility timeout, and land in the dead-letter queue after its
    /// maxReceiveCount, never dropped. Anything else is one EventBridge event.
    pub async fn handle_invocation(&self, payload: Value) -> Result<Value, Error> {
        if let Some(cause) = payload.get("stoppedTask").and_then(Value::as_str) {
            // The .sync pipeline: a task state failed with States.TaskFailed.
            let verdict = ecs_event::sync_verdict(cause, None);
            tracing::info!(
                error = verdict.error,
                retryable = verdict.retryable,
                "a .sync task failed"
            );
            return Ok(serde_json::to_value(verdict).expect("a verdict serialises"));
        }
        if let Some(request) = payload.get("taskTimedOut") {
            let state: crate::timed_out::TimedOutState = serde_json::from_value(request.clone())
                .map_err(|e| Error::InvalidInput(format!("taskTimedOut: {e}")))?;
            return Ok(self.task_timed_out(&state).await);
        }
        if payload.get("Records").is_none() {
            let outcome = self.handle(payload).await?;
            return Ok(serde_json::to_value(outcome).expect("an outcome serialises"));
        }
        let batch: SqsEvent = serde_json::from_value(payload)
            .map_err(|e| Error::InvalidInput(format!("not an SQS batch: {e}")))?;
        // The records at once: one slow event (a callback retried through throttling
        // for a minute) must not hold the others' tokens past their heartbeat window.
        // The fault soak showed it: with 16 executions at once, while some callbacks
        // were answered 500 and retried, failures queued behind them ended as
        // States.Timeout instead of their Baton.* error.
        let handled =
            futures::future::join_all(batch.records.into_iter().map(|record| async move {
                let id = record.message_id.clone().unwrap_or_default();
                let event = serde_json::from_str::<Value>(record.body.as_deref().unwrap_or(""))
                    .map_err(|e| Error::InvalidInput(format!("message {id} is not JSON: {e}")));
                let handled = match event {
                    Ok(event) => self.handle(event).await.map(|_| ()),
                    Err(e) => Err(e),
                };
                (id, handled)
            }))
            .await;
        let mut response = SqsBatchResponse::default();
        for (id, handled) in handled {
            if let Err(e) = handled {
                tracing::error!(message_id = id, error = %e, "event not handled; SQS will deliver it again");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
        Ok(serde_json::to_value(response).expect("a batch response serialises"))
    }

    /// Decide and act. An `Err` means the event must be delivered again: returned
    /// when Step Functions or ECS could not be reached after the SDK's retries, or
    /// the event could not be read.
    pub async fn handle(&self, event: Value) -> Result<Outcome, Error> {
        if baton::execution_event::is_status_change(&event) {
            return Ok(self.handle_execution_end(event).await);
        }
        let event = ecs_event::parse_event(event)?;
        let mut detail = event.detail;
        let logs = self.logs_of(&detail);
        let mut verdict = ecs_event::verdict(&detail, logs.as_deref());
        if verdict == Verdict::OverridesMissing {
            detail.overrides = Some(self.describe_overrides(&detail).await?);
            verdict = ecs_event::verdict(&detail, logs.as_deref());
        }
        let outcome = self.act(&detail, verdict).await?;
        // After the token: a task killed mid-upload (crash, OOM, SIGKILL) leaves its
        // multipart upload open, its parts billed and invisible until the bucket's
        // lifecycle rule (AbortIncompleteMultipartUpload, 1 day) removes them. Any
        // stopped task, .sync too. A failure here is logged, not retried: the
        // token is what matters, and the lifecycle rule is the backstop.
        if let Err(e) = self.abort_abandoned_uploads(&detail).await {
            tracing::warn!(task_arn = detail.task_arn.as_deref(), error = %e, "could not abort the stopped task's multipart uploads; the bucket's lifecycle rule will");
        }
        Ok(outcome)
    }

    async fn act(&self, detail: &TaskStateChange, verdict: Verdict) -> Result<Outcome, Error> {
        let task_arn = detail.task_arn.clone();
        let ignored = |reason: String| {
            tracing::info!(task_arn = task_arn.as_deref(), reason, "ignored");
            Ok(Outcome {
                action: "ignored",
                reason,
                error: None,
                task_arn: task_arn.clone(),
            })
        };
        match verdict {
            Verdict::NotStopped { last_status } => ignored(format!(
                "lastStatus is {}, not STOPPED",
                last_status.as_deref().unwrap_or("missing")
            )),
            Verdict::NoToken | Verdict::OverridesMissing => {
                ignored("no TASK_TOKEN in any container override: not a callback task".into())
            }
            Verdict::Fail {
                token,
                error,
                cause,
            } => match self.callbacks.failure(&token, error, &cause).await? {
                CallbackOutcome::Delivered => {
                    tracing::warn!(task_arn = task_arn.as_deref(), token = %token, error, cause, "task stopped without calling back; failed its token");
                    Ok(Outcome {
                        action: "failed",
                        reason: "the task stopped without calling back".into(),
                        error: Some(error),
                        task_arn,
                    })
                }
                CallbackOutcome::Rejected { code } => {
                    // Not a token Step Functions can read: no retry will change that.
                    tracing::error!(task_arn = task_arn.as_deref(), token = %token, code, "Step Functions rejected the task token as malformed");
                    Ok(Outcome {
                        action: "rejected",
                        reason: format!("Step Functions rejected the task token ({code})"),
                        error: Some(error),
                        task_arn,
                    })
                }
                CallbackOutcome::AlreadyClosed { code } => {
                    tracing::info!(task_arn = task_arn.as_deref(), token = %token, code, "token already closed: the task had called back");
                    Ok(Outcome {
                        action: "alreadyClosed",
                        reason: format!(
                            "the token was already closed ({code}): the task had called back"
                        ),
                        error: None,
                        task_arn,
                    })
                }
            },
        }
    }

    /// An execution ended: abort the multipart uploads under its prefix begun before
    /// it stopped. They are a task's that was killed mid-upload and whose STOPPED
    /// event never came (the heartbeat timed the execution out), or one the SDK
    /// began twice when an answer was lost. Failures are logged, not retried: the
    /// bucket's lifecycle rule is the backstop.
    async fn handle_execution_end(&self, event: Value) -> Outcome {
        let detail: baton::execution_event::ExecutionStatusChange =
            serde_json::from_value(event.get("detail").cloned().unwrap_or_default())
                .unwrap_or_default();
        let ignored = |reason: &str| Outcome {
            action: "ignored",
            reason: reason.into(),
            error: None,
            task_arn: None,
        };
        let Some(handoff) = &self.handoff else {
            return ignored(
                "an execution ended; BATON_BUCKET is not set, so its data is not looked at",
            );
        };
        let Some((prefix, stopped_at)) = detail.abandoned_uploads_scope(handoff) else {
            return ignored("not an ended execution with a name and a stop date");
        };
        let status = detail.status.as_deref().unwrap_or("");
        let name = detail.name.as_deref().unwrap_or("");
        // The tasks first: a task still running keeps billing, and could still write.
        let stopped = match (&self.cluster, detail.execution_arn.as_deref()) {
            (Some(cluster), Some(execution_arn)) => {
                // A pipeline's step is an execution of its own with the pipeline's
                // folder: the reason names the execution the user started.
                let reason = |output: Option<&str>| match output.and_then(|o| handoff.folder_of(o))
                {
                    Some((folder, step)) if folder != name => {
                        format!("Baton: step {step} of execution {folder} ended ({status})")
                    }
                    _ => format!("Baton: execution {name} ended ({status})"),
                };
                let started_by = baton::execution_event::started_by(execution_arn);
                // StartedBy names the execution; its tasks' data may lie in another
                // execution's folder (a pipeline step keeps its data under the
                // pipeline's execution), so any Baton output counts.
                let baton_data = baton::payload::S3Location {
                    bucket: handoff.bucket.clone(),
                    key: handoff.prefix.clone(),
                };
                match self
                    .stop_tasks(cluster, &started_by, &baton_data, reason)
                    .await
                {
                    Ok(stopped) => stopped.len().to_string(),
                    Err(e) => {
                        tracing::warn!(execution = detail.execution_arn.as_deref(), error = %e, "could not stop the ended execution's tasks");
                        "unknown (see the log)".into()
                    }
                }
            }
            (None, _) => "none looked for (BATON_CLUSTER unset)".into(),
            (_, None) => "none looked for (no executionArn in the event)".into(),
        };
        let aborted = match self
            .abort_uploads_begun_before(&prefix, stopped_at, detail.execution_arn.as_deref())
            .await
        {
            Ok(aborted) => aborted.to_string(),
            Err(e) => {
                tracing::warn!(execution = detail.execution_arn.as_deref(), error = %e, "could not abort the ended execution's multipart uploads; the bucket's lifecycle rule will");
                "unknown (see the log)".into()
            }
        };
        Outcome {
            action: "cleanedUp",
            reason: format!(
                "the execution ended ({status}); tasks stopped: {stopped}; multipart uploads left open under {} aborted: {aborted}",
                prefix.uri()
            ),
            error: None,
            task_arn: None,
        }
    }

    /// A callback task state timed out: stop the tasks it started (every attempt's:
    /// they share its `BATON_OUTPUT`) and answer the typed error. Never an `Err`
    /// for ECS trouble: the error the user sees stays typed, and the execution's
    /// end (a status change the watchdog also handles) stops what is left.
    pub async fn task_timed_out(&self, state: &crate::timed_out::TimedOutState) -> Value {
        use crate::timed_out::{Stopping, answer};
        let stopping = match (
            &self.cluster,
            baton::payload::S3Location::parse(&state.output),
        ) {
            (None, _) => Stopping::NoCluster,
            (Some(_), Err(e)) => Stopping::Failed(format!("BATON_OUTPUT {:?}: {e}", state.output)),
            (Some(cluster), Ok(output)) => {
                // The execution whose folder holds the output: a pipeline's, for
                // a step that runs as an execution of its own.
                let name = match self
                    .handoff
                    .as_ref()
                    .and_then(|h| h.folder_of(&state.output))
                {
                    Some((folder, _)) => folder,
                    None => state
                        .execution_arn
                        .rsplit(':')
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                };
                let reason = |_: Option<&str>| {
                    format!(
                        "Baton: {} of execution {name} timed out ({})",
                        state.state,
                        state.error()
                    )
                };
                let started_by = baton::execution_event::started_by(&state.execution_arn);
                match self.stop_tasks(cluster, &started_by, &output, reason).await {
                    Ok(stopped) => Stopping::Stopped(stopped),
                    Err(e) => Stopping::Failed(e.to_string()),
                }
            }
        };
        let answer = answer(state, &stopping);
        tracing::warn!(
            execution = state.execution_arn,
            state = state.state,
            error = state.error(),
            cause = answer["Cause"].as_str(),
            "a task state timed out"
        );
        answer
    }

    /// Stop the tasks of `cluster` still meant to run that an execution started
    /// (`started_by`, [`baton::execution_event::started_by`]) and whose `BATON_OUTPUT`
    /// lies under `scope` (Baton's prefix, or one task state's output):
    /// ListTasks by startedBy, DescribeTasks by 100, StopTask with `reason` of the
    /// task's `BATON_OUTPUT` (ECS shows it as the task's stoppedReason). Idempotent: a task already stopping is not
    /// listed, or stops again harmlessly.
    pub async fn stop_tasks(
        &self,
        cluster: &str,
        started_by: &str,
        scope: &baton::payload::S3Location,
        reason: impl Fn(Option<&str>) -> String,
    ) -> Result<Vec<String>, Error> {
        let service = |operation: &'static str| {
            move |e: String| Error::Service {
                service: "ecs",
                operation,
                message: e,
            }
        };
        let arns = baton::aws::running_task_arns(&self.ecs, cluster, Some(started_by))
            .await
            .map_err(service("ListTasks"))?;
        let tasks = baton::aws::describe_tasks(&self.ecs, cluster, &arns)
            .await
            .map_err(service("DescribeTasks"))?;
        let mut stopped = Vec::new();
        for task in &tasks {
            let detail = TaskStateChange {
                overrides: task.overrides().map(baton::ecs_event::Overrides::from_sdk),
                ..Default::default()
            };
            let Some(arn) = task.task_arn().filter(|_| detail.output_under(scope)) else {
                continue;
            };
            let reason = reason(detail.override_variable("BATON_OUTPUT"));
            self.ecs
                .stop_task()
                .cluster(cluster)
                .task(arn)
                // StopTask keeps up to 255 characters of the reason.
                .reason(baton::limits::truncate_chars(&reason, 255))
                .send()
                .await
                .map_err(|e| baton::error::display_chain(&e))
                .map_err(service("StopTask"))?;
            tracing::warn!(task_arn = arn, reason = reason.as_str(), "stopped a task");
            stopped.push(arn.to_string());
        }
        Ok(stopped)
    }

    /// Abort the multipart uploads the stopped task began under its `BATON_OUTPUT`
    /// prefix before it stopped ([`TaskStateChange::abandoned_uploads_scope`]).
    /// Uploads begun later belong to a retry's new task and are left alone. Returns
    /// how many were aborted.
    pub async fn abort_abandoned_uploads(&self, detail: &TaskStateChange) -> Result<usize, Error> {
        let Some((output, stopped_at)) = detail.abandoned_uploads_scope() else {
            return Ok(0);
        };
        self.abort_uploads_begun_before(&output, stopped_at, detail.task_arn.as_deref())
            .await
    }

    /// Abort the uploads under `output` (a bucket and key prefix) begun at or before
    /// `stopped_at`; how many. `by` names the task or execution, for the log.
    async fn abort_uploads_begun_before(
        &self,
        output: &baton::payload::S3Location,
        stopped_at: aws_smithy_types::DateTime,
        by: Option<&str>,
    ) -> Result<usize, Error> {
        let service = |operation: &'static str| {
            move |e: String| Error::Service {
                service: "s3",
                operation,
                message: e,
            }
        };
        let mut aborted = 0;
        let (mut key_marker, mut upload_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .s3
                .list_multipart_uploads()
                .bucket(&output.bucket)
                .prefix(&output.key)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(upload_marker.take())
                .send()
                .await
                .map_err(|e| baton::error::display_chain(&e))
                .map_err(service("ListMultipartUploads"))?;
            for upload in page.uploads() {
                let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else {
                    continue;
                };
                if !begun_before(upload.initiated(), &stopped_at) {
                    continue;
                }
                let aborted_now = self
                    .s3
                    .abort_multipart_upload()
                    .bucket(&output.bucket)
                    .key(key)
                    .upload_id(id)
                    .send()
                    .await;
                match aborted_now {
                    Ok(_) => aborted += 1,
                    // Already gone: aborted or completed by someone else meanwhile.
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_upload()) => {}
                    Err(e) => {
                        return Err(service("AbortMultipartUpload")(
                            baton::error::display_chain(&e),
                        ));
                    }
                }
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(String::from);
            upload_marker = page.next_upload_id_marker().map(String::from);
            if key_marker.is_none() {
                break;
            }
        }
        if aborted > 0 {
            tracing::warn!(
                by,
                bucket = output.bucket,
                prefix = output.key,
                aborted,
                "aborted the multipart uploads left open"
            );
        }
        Ok(aborted)
    }

    fn logs_of(&self, detail: &TaskStateChange) -> Option<String> {
        let template = self.logs_template.as_deref()?;
        Some(template.replace("{task_id}", detail.task_id().unwrap_or("unknown")))
    }

    /// Events without overrides: ask ECS, which keeps stopped tasks for at least
    /// an hour.
    async fn describe_overrides(&self, detail: &TaskStateChange) -> Result<Overrides, Error> {
        let (Some(cluster), Some(task)) = (&detail.cluster_arn, &detail.task_arn) else {
            return Ok(Overrides::default());
        };
        let out = self
            .ecs
            .describe_tasks()
            .cluster(cluster)
            .tasks(task)
            .send()
            .await
            .map_err(|e| Error::Service {
                service: "ecs",
                operation: "DescribeTasks",
                message: baton::error::display_chain(&e),
            })?;
        Ok(out
            .tasks()
            .first()
            .and_then(|t| t.overrides())
            .map(Overrides::from_sdk)
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::DateTime;

    #[test]
    fn upload_begun_after_the_stop_is_kept() {
        let stop = DateTime::from_secs_and_nanos(1_796_392_801, 250_000_000);
        let before = DateTime::from_secs(1_796_392_801);
        let after = DateTime::from_secs(1_796_392_802);
        assert!(begun_before(Some(&before), &stop));
        assert!(begun_before(Some(&stop), &stop));
        assert!(!begun_before(Some(&after), &stop), "a retry's upload");
        assert!(!begun_before(None, &stop), "unknown: keep it");
    }
}
