//! An execution of the stack's state machines ended ("Step Functions Execution
//! Status Change"): the tasks it left running are stopped, and the multipart
//! uploads left open under its folder are aborted.

use baton::execution_event::ExecutionStatusChange;

use crate::handler::{Outcome, Watchdog};

impl Watchdog {
    /// An execution ended: abort the multipart uploads under its prefix begun before
    /// it stopped. They are a task's that was killed mid-upload and whose STOPPED
    /// event never came (the heartbeat timed the execution out), or one the SDK
    /// began twice when an answer was lost. Failures are logged, not retried: the
    /// bucket's lifecycle rule is the backstop.
    pub(crate) async fn execution_ended(&self, detail: ExecutionStatusChange) -> Outcome {
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
}
