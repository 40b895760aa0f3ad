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
            ecs: baton::aws::ecs_client(config),
            logs_template,
        }
    }

    /// One invocation. `{"stoppedTask": <States.TaskFailed cause>}` from the .sync
    /// pipeline: the Baton error for it. From the stack's SQS queue: a batch, answered with the
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
        if payload.get("Records").is_none() {
            let outcome = self.handle(payload).await?;
            return Ok(serde_json::to_value(outcome).expect("an outcome serialises"));
        }
        let batch: SqsEvent = serde_json::from_value(payload)
            .map_err(|e| Error::InvalidInput(format!("not an SQS batch: {e}")))?;
        let mut response = SqsBatchResponse::default();
        for record in batch.records {
            let id = record.message_id.clone().unwrap_or_default();
            let event = serde_json::from_str::<Value>(record.body.as_deref().unwrap_or(""))
                .map_err(|e| Error::InvalidInput(format!("message {id} is not JSON: {e}")));
            let handled = match event {
                Ok(event) => self.handle(event).await,
                Err(e) => Err(e),
            };
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
