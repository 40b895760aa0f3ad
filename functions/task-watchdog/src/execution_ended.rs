//! An execution of the stack's state machines ended ("Step Functions Execution
//! Status Change"): the tasks it left running are stopped, and the multipart
//! uploads left open under its folder are aborted.

use aws_smithy_types::DateTime;
use baton::Error;
use baton::execution_event::{self, ExecutionStatusChange};

use crate::handler::{Outcome, Watchdog};

impl Watchdog {
    /// Since when the tasks of the ended execution's folders belong to a newer attempt
    /// of it, if any ([`execution_event::superseding_redrive`]): RedriveExecution
    /// keeps the execution's ARN, and EventBridge may deliver the failed attempt's
    /// event late, after the redriven attempt started tasks in the same folder. Read
    /// from DescribeExecution, not for a SUCCEEDED execution (never redriven). A step
    /// of a redriven pipeline needs no reading of the pipeline: its next attempt is
    /// another execution, and each task names its own (`BATON_EXECUTION`,
    /// [`execution_event::task_of_ended_attempt`]). An execution the watchdog's role
    /// may not read (a user's own pipeline whose ends a rule of theirs routes here,
    /// without the grant docs/pipelines.md names) is taken as not redriven, and
    /// logged; any other failure to read is an `Err`, and the event comes again.
    async fn superseded_from(
        &self,
        detail: &ExecutionStatusChange,
        stopped_at: &DateTime,
    ) -> Result<Option<DateTime>, Error> {
        let Some(arn) = detail.execution_arn.as_deref() else {
            return Ok(None);
        };
        if detail.status.as_deref() == Some("SUCCEEDED") {
            return Ok(None);
        }
        let described = match self
            .callbacks
            .sfn()
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
        {
            Ok(described) => described,
            Err(e) => {
                let code = e.as_service_error().and_then(|e| e.meta().code());
                let message = baton::error::display_chain(&e);
                if e.as_service_error()
                    .is_some_and(|e| e.is_execution_does_not_exist())
                    || code == Some("AccessDeniedException")
                {
                    tracing::warn!(
                        execution = arn,
                        error = message.as_str(),
                        "could not read whether the execution was redriven; taken as not redriven"
                    );
                    return Ok(None);
                }
                return Err(Error::Service {
                    service: "states",
                    operation: "DescribeExecution",
                    message,
                });
            }
        };
        let from = execution_event::superseding_redrive(
            stopped_at,
            detail.redrive_count,
            Some(described.status().as_str()),
            described.redrive_date().copied(),
            described.redrive_count().unwrap_or(0).into(),
        );
        if let Some(from) = &from {
            tracing::info!(execution = arn, superseded_from = %from, "the ended attempt was superseded by a redrive: the new attempt's tasks are kept");
        }
        Ok(from)
    }

    /// An execution ended: stop its tasks still running, then abort the multipart
    /// uploads under its prefix begun before it stopped.
    ///
    /// Its tasks are those whose `BATON_OUTPUT` lies under its folders
    /// ([`ExecutionStatusChange::tasks_scopes`], [`Watchdog::stop_tasks`]). A failed or refused ECS call is an `Err`:
    /// the record goes back to the SQS queue, comes again after the visibility
    /// timeout and, after the queue's maxReceiveCount, waits in the dead-letter
    /// queue, whose alarm fires. That holds for errors that no retry can mend too
    /// (AccessDenied, InvalidParameter): a task left running bills until someone
    /// stops it, so it must be seen, and the dead-letter queue is where it is seen;
    /// the retries before cost a few idempotent ECS calls.
    ///
    /// The uploads are a task's that was killed mid-upload and whose STOPPED event
    /// never came (the heartbeat timed the execution out), or one the SDK began
    /// twice when an answer was lost. They are aborted even when stopping the tasks
    /// failed; their own failures are logged, not retried: the bucket's lifecycle
    /// rule is the backstop.
    pub(crate) async fn execution_ended(
        &self,
        detail: ExecutionStatusChange,
    ) -> Result<Outcome, Error> {
        let ignored = |reason: &str| Outcome {
            action: "ignored",
            reason: reason.into(),
            error: None,
            task_arn: None,
        };
        let Some(handoff) = &self.handoff else {
            return Ok(ignored(
                "an execution ended; BATON_BUCKET is not set, so its data is not looked at",
            ));
        };
        let Some((prefix, stopped_at)) = detail.abandoned_uploads_scope(handoff) else {
            return Ok(ignored(
                "not an ended execution with a name and a stop date",
            ));
        };
        let status = detail.status.as_deref().unwrap_or("");
        let name = detail.name.as_deref().unwrap_or("");
        // The tasks first: a task still running keeps billing, and could still write.
        let (stopped, failed) = match &self.cluster {
            Some(cluster) => {
                // A pipeline's step is an execution of its own with the pipeline's
                // folder: the reason names the execution the user started.
                let reason = |output: Option<&str>| match output.and_then(|o| handoff.folder_of(o))
                {
                    Some((folder, step)) if folder != name => {
                        format!("Baton: step {step} of execution {folder} ended ({status})")
                    }
                    _ => format!("Baton: execution {name} ended ({status})"),
                };
                let scopes = detail.tasks_scopes(handoff);
                // A step's tasks name the step's execution: only its own are its.
                let step_of = detail.started_by().and(detail.execution_arn.as_deref());
                match self.superseded_from(&detail, &stopped_at).await {
                    Err(e) => ("unknown".into(), Some(e)),
                    Ok(from) => {
                        let ours = |task: &aws_sdk_ecs::types::Task| {
                            let overrides =
                                task.overrides().map(baton::ecs_event::Overrides::from_sdk);
                            let execution = baton::ecs_event::TaskStateChange {
                                overrides,
                                ..Default::default()
                            };
                            execution_event::task_of_ended_attempt(
                                task.created_at(),
                                from.as_ref(),
                                execution.override_variable(baton::payload::EXECUTION_VARIABLE),
                                step_of,
                            )
                        };
                        match self.stop_tasks(cluster, &scopes, reason, ours).await {
                            Ok(report) => (
                                format!(
                                    "{} (of {} running in the cluster; {} ListTasks, {} DescribeTasks calls)",
                                    report.stopped.len(),
                                    report.running,
                                    report.list_calls,
                                    report.describe_calls
                                ),
                                None,
                            ),
                            Err(e) => ("unknown".into(), Some(e)),
                        }
                    }
                }
            }
            None => ("none looked for (BATON_CLUSTER unset)".into(), None),
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
        if let Some(e) = failed {
            tracing::error!(
                execution = detail.execution_arn.as_deref(),
                error = %e,
                "could not stop the ended execution's tasks; the event will be delivered again"
            );
            return Err(e);
        }
        Ok(Outcome {
            action: "cleanedUp",
            reason: format!(
                "the execution ended ({status}); tasks stopped: {stopped}; multipart uploads left open under {} aborted: {aborted}",
                prefix.uri()
            ),
            error: None,
            task_arn: None,
        })
    }
}
