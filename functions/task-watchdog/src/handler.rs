//! Handles one EventBridge "ECS Task State Change" event.

use aws_config::SdkConfig;
use baton::ecs_event::{self, Overrides, TaskStateChange, Verdict};
use baton::{CallbackClient, CallbackOutcome, Error};
use serde::Serialize;
use serde_json::Value;

/// What the watchdog did with an event (the Lambda's result, for the logs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// `failed`, `alreadyClosed` or `ignored`.
    pub action: &'static str,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_arn: Option<String>,
}

pub struct Watchdog {
    callbacks: CallbackClient,
    ecs: aws_sdk_ecs::Client,
    /// Where a task's logs are, with `{task_id}` replaced (`BATON_TASK_LOGS`).
    logs_template: Option<String>,
}

impl Watchdog {
    pub fn new(config: &SdkConfig, logs_template: Option<String>) -> Watchdog {
        Watchdog {
            callbacks: CallbackClient::new(config),
            ecs: aws_sdk_ecs::Client::new(config),
            logs_template,
        }
    }

    /// Decide and act. An `Err` makes EventBridge retry the event: only returned
    /// when Step Functions or ECS could not be reached after the SDK's retries.
    pub async fn handle(&self, event: Value) -> Result<Outcome, Error> {
        let event = ecs_event::parse_event(event)?;
        let mut detail = event.detail;
        let task_arn = detail.task_arn.clone();
        let logs = self.logs_of(&detail);
        let mut verdict = ecs_event::verdict(&detail, logs.as_deref());
        if verdict == Verdict::OverridesMissing {
            detail.overrides = Some(self.describe_overrides(&detail).await?);
            verdict = ecs_event::verdict(&detail, logs.as_deref());
        }
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
