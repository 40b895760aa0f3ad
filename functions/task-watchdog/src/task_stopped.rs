//! An ECS task stopped ("ECS Task State Change"): a callback task that stopped
//! without calling back gets its token failed with the Baton error for how it
//! stopped ([`baton::ecs_event::verdict`]), and the multipart uploads it left open
//! are aborted.

use baton::ecs_event::{self, Overrides, TaskStateChange, TaskStateChangeEvent, Verdict};
use baton::metrics::{MetricSet, Unit};
use baton::{CallbackOutcome, Error};
use std::time::SystemTime;

use crate::handler::{Outcome, Watchdog};

/// The metrics of a token failed for a stopped task: one `Failures` for its error,
/// and `StopToFailLatency`, from the task's `stoppedAt` to `now` (when
/// SendTaskFailure returned), when the event says when it stopped. `folder` is the
/// execution and step of its `BATON_OUTPUT`, properties like the task's ARN: never
/// dimensions.
pub fn failure_metrics(
    detail: &TaskStateChange,
    error: &str,
    folder: Option<(String, String)>,
    now: SystemTime,
) -> MetricSet {
    let mut metrics = MetricSet::failure(error)
        .property("function", "task-watchdog")
        .property("taskArn", detail.task_arn.clone())
        .property("stopCode", detail.stop_code.clone())
        .property("stoppedAt", detail.stopped_at.clone());
    if let Some((execution, step)) = folder {
        metrics = metrics
            .property("execution", execution)
            .property("step", step);
    }
    match detail
        .stopped_at
        .as_deref()
        .and_then(|at| baton::metrics::millis_since(at, now))
    {
        Some(ms) => metrics.metric(
            baton::metrics::names::STOP_TO_FAIL_LATENCY,
            Unit::Milliseconds,
            ms.round(),
        ),
        None => metrics,
    }
}

impl Watchdog {
    /// Decide and act. An `Err` means the event must be delivered again: returned
    /// when Step Functions or ECS could not be reached after the SDK's retries.
    pub(crate) async fn task_stopped(&self, event: TaskStateChangeEvent) -> Result<Outcome, Error> {
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
                    let folder = detail
                        .override_variable("BATON_OUTPUT")
                        .and_then(|o| self.handoff.as_ref()?.folder_of(o));
                    failure_metrics(detail, error, folder, SystemTime::now()).emit();
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
    use baton::error::names;
    use serde_json::json;
    use std::time::{Duration, UNIX_EPOCH};

    fn detail(stopped_at: Option<&str>) -> TaskStateChange {
        TaskStateChange {
            task_arn: Some("arn:aws:ecs:us-east-1:1:task/baton/2d3c".into()),
            stop_code: Some("EssentialContainerExited".into()),
            stopped_at: stopped_at.map(String::from),
            last_status: Some("STOPPED".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_failed_token_counts_its_error_and_the_time_since_the_stop() {
        // 2024-11-13T21:23:11.984Z is 1_731_532_991_984 ms after the epoch.
        let now = UNIX_EPOCH + Duration::from_millis(1_731_532_991_984 + 640);
        let folder = Some(("demo-1".to_string(), "task1".to_string()));
        let doc = failure_metrics(
            &detail(Some("2024-11-13T21:23:11.984Z")),
            names::CONTAINER_EXITED,
            folder,
            now,
        )
        .to_value();
        assert_eq!(doc["Error"], "Baton.ContainerExited");
        assert_eq!(doc["Failures"], 1);
        assert_eq!(doc["StopToFailLatency"], 640);
        assert_eq!(doc["execution"], "demo-1");
        assert_eq!(doc["taskArn"], "arn:aws:ecs:us-east-1:1:task/baton/2d3c");
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        // By stack and error, and by stack alone; without a stack name (BATON_STACK
        // unset, as in a plain `cargo test`), by error alone.
        let stack = std::env::var("BATON_STACK").is_ok_and(|s| !s.trim().is_empty());
        let expected = if stack {
            json!([["Stack", "Error"], ["Stack"]])
        } else {
            json!([["Error"]])
        };
        assert_eq!(directive["Dimensions"], expected);
        assert_eq!(
            directive["Metrics"],
            json!([
                {"Name": "Failures", "Unit": "Count"},
                {"Name": "StopToFailLatency", "Unit": "Milliseconds"},
            ])
        );
    }

    #[test]
    fn without_a_stop_time_only_the_failure_is_counted() {
        let doc =
            failure_metrics(&detail(None), names::TASK_STOPPED, None, SystemTime::now()).to_value();
        assert_eq!(doc["Failures"], 1);
        assert!(doc.get("StopToFailLatency").is_none());
        assert!(doc.get("execution").is_none());
    }
}
