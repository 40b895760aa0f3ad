//! An execution of the stack's state machines ended ("Step Functions Execution
//! Status Change"): the tasks it left running are stopped, and the multipart
//! uploads left open under its folder are aborted.

use aws_smithy_types::DateTime;
use baton::Error;
use baton::execution_event::{self, ExecutionStatusChange};

use crate::handler::{Outcome, Watchdog};

impl Watchdog {
    /// The redrive that superseded the ended attempt this event is about, if any
    /// ([`execution_event::superseding_redrive`]): RedriveExecution keeps the
    /// execution's ARN, and EventBridge may deliver the failed attempt's event late,
    /// after the redriven attempt started tasks in the same folder. Read from
    /// DescribeExecution (`redriveDate`, `redriveCount`) of the execution and, for a
    /// pipeline's step, of the pipeline (a redriven pipeline starts its step again in
    /// a new execution, in the same folder). The execution is one of the stack's
    /// (ExecutionEndedRule): a failure to read it is an error, and the event comes
    /// again. A pipeline that is not the stack's may not be readable by the
    /// watchdog's role: then it is taken as not redriven, and logged.
    async fn superseding_redrive(
        &self,
        detail: &ExecutionStatusChange,
        stopped_at: &DateTime,
    ) -> Result<Option<DateTime>, Error> {
        let mut latest: Option<DateTime> = None;
        let arns = detail
            .execution_arn
            .iter()
            .map(|arn| (arn.clone(), true))
            .chain(detail.started_by().map(|arn| (arn, false)));
        for (arn, own) in arns {
            let described = match self
                .callbacks
                .sfn()
                .describe_execution()
                .execution_arn(&arn)
                .send()
                .await
            {
                Ok(described) => described,
                Err(e) => {
                    let gone = e
                        .as_service_error()
                        .is_some_and(|e| e.is_execution_does_not_exist());
                    let message = baton::error::display_chain(&e);
                    if own && !gone {
                        return Err(Error::Service {
                            service: "states",
                            operation: "DescribeExecution",
                            message,
                        });
                    }
                    tracing::warn!(
                        execution = arn.as_str(),
                        error = message.as_str(),
                        "could not read whether the execution was redriven; taken as not redriven"
                    );
                    continue;
                }
            };
            let redrive = execution_event::superseding_redrive(
                stopped_at,
                detail.redrive_count.filter(|_| own),
                described.redrive_date().cloned(),
                described.redrive_count().unwrap_or(0).into(),
            );
            if let Some(date) = redrive
                && latest
                    .as_ref()
                    .is_none_or(|l| l.as_secs_f64() < date.as_secs_f64())
            {
                latest = Some(date);
            }
        }
        if let Some(date) = &latest {
            tracing::info!(execution = detail.execution_arn.as_deref(), redriven_at = %date, "the ended attempt was superseded by a redrive: the new attempt's tasks are kept");
        }
        Ok(latest)
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
                let redrive = self.superseding_redrive(&detail, &stopped_at).await?;
                let ours = |task: &aws_sdk_ecs::types::Task| {
                    execution_event::task_of_ended_attempt(task.created_at(), redrive.as_ref())
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
