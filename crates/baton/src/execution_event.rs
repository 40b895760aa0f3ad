//! "Step Functions Execution Status Change" events: an execution of the stack's
//! state machines ended (the watchdog cleans up after it).
//!
//! Shape: Step Functions docs, "Automating Step Functions event delivery with
//! EventBridge" (`startDate`/`stopDate` in epoch milliseconds).

use aws_smithy_types::DateTime;
use serde::{Deserialize, Serialize};

use crate::handoff::HandoffConfig;
use crate::payload::S3Location;

pub const SOURCE: &str = "aws.states";
pub const DETAIL_TYPE: &str = "Step Functions Execution Status Change";

/// `detail` of the event; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExecutionStatusChange {
    pub execution_arn: Option<String>,
    pub state_machine_arn: Option<String>,
    pub name: Option<String>,
    pub status: Option<String>,
    pub start_date: Option<i64>,
    pub stop_date: Option<i64>,
    /// The execution's input as JSON text, when the event carries it (`inputDetails`
    /// says whether it was included): read leniently, any JSON value is kept.
    pub input: Option<serde_json::Value>,
    /// How many times the execution had been redriven when this event was sent
    /// (RedriveExecution keeps the execution's ARN: a late event of an earlier
    /// attempt has a lower count). Absent from events of before redrive existed;
    /// read leniently (a number or a numeric string), like the rest.
    #[serde(deserialize_with = "lenient_count")]
    pub redrive_count: Option<i64>,
}

fn lenient_count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    Ok(match value {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    })
}

/// The key a step's input carries its parent execution's ARN under: what the
/// `startExecution` integration's docs name for `$$.Execution.Id` (Step Functions
/// guide, "Start workflow executions from a task state"), and what Baton's pipelines
/// pass to their steps.
pub const STARTED_BY_KEY: &str = "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID";

/// Since when tasks of the ended execution's folder belong to a newer attempt of it,
/// if any: RedriveExecution keeps the execution's ARN, and EventBridge may deliver
/// the failed attempt's end late. Read after the event (DescribeExecution): the
/// execution's `status`, `redriveDate` and `redriveCount`. Superseded when it was
/// redriven after the event's stop (or the event's own redrive count is lower), or
/// when it runs again or waits to be redriven (`RUNNING`, `PENDING_REDRIVE`): then
/// from the redrive date, or the event's stop while that date is not yet newer.
pub fn superseding_redrive(
    stopped_at: &DateTime,
    event_redrive_count: Option<i64>,
    status: Option<&str>,
    redrive_date: Option<DateTime>,
    redrive_count: i64,
) -> Option<DateTime> {
    let later = redrive_date.filter(|date| {
        date.as_secs_f64() > stopped_at.as_secs_f64()
            || event_redrive_count.is_some_and(|c| redrive_count > c)
    });
    let again = matches!(status, Some("RUNNING" | "PENDING_REDRIVE"));
    match (later, again) {
        (Some(date), _) => Some(date),
        (None, true) => Some(*stopped_at),
        (None, false) => None,
    }
}

/// Was this task the ended attempt's? A task that names its execution
/// (`BATON_EXECUTION`, set by the task state machine) and is in the folder of a
/// pipeline's step must name the ended one: a redriven pipeline runs its step again
/// as a new execution in the same folder. And unless a later attempt superseded
/// this one, any task of the folder was; then only one created before that (one with
/// no creation time is left alone: its token is closed, so its own worker stops at
/// its next heartbeat).
pub fn task_of_ended_attempt(
    created_at: Option<&DateTime>,
    superseded_from: Option<&DateTime>,
    task_execution: Option<&str>,
    step_of: Option<&str>,
) -> bool {
    let same_step_attempt = match (step_of, task_execution) {
        (Some(ended), Some(task)) => task == ended,
        _ => true,
    };
    let before = match superseded_from {
        None => true,
        Some(from) => created_at.is_some_and(|c| c.as_secs_f64() < from.as_secs_f64()),
    };
    same_step_attempt && before
}

/// Is this EventBridge event an execution status change?
pub fn is_status_change(event: &serde_json::Value) -> bool {
    event.get("detail-type").and_then(|t| t.as_str()) == Some(DETAIL_TYPE)
}

impl ExecutionStatusChange {
    /// SUCCEEDED, FAILED, TIMED_OUT or ABORTED: nothing of it runs any more.
    pub fn has_ended(&self) -> bool {
        matches!(
            self.status.as_deref(),
            Some("SUCCEEDED" | "FAILED" | "TIMED_OUT" | "ABORTED")
        )
    }

    /// When the execution stopped (`stopDate`), once it has ended.
    pub fn stopped_at(&self) -> Option<DateTime> {
        self.has_ended()
            .then_some(self.stop_date?)
            .map(DateTime::from_millis)
    }

    /// Where the ended execution kept its data (`s3://<bucket>/<prefix><name>/`) and
    /// when it stopped: multipart uploads there begun before then are abandoned (a
    /// task killed mid-upload whose STOPPED event never came). `None` while it runs,
    /// or when the event lacks a valid name or stop date.
    pub fn abandoned_uploads_scope(
        &self,
        config: &HandoffConfig,
    ) -> Option<(S3Location, DateTime)> {
        let layout = config.layout(self.name.as_deref()?).ok()?;
        let stopped = self.stopped_at()?;
        Some((
            S3Location {
                bucket: config.bucket.clone(),
                key: layout.key(""),
            },
            stopped,
        ))
    }

    /// Where the tasks of the ended execution write (their `BATON_OUTPUT` lies under
    /// one of these), found from documented fields alone:
    /// - its own folder, `s3://<bucket>/<prefix><name>/` (every state machine of
    ///   the stack keeps its data there by default);
    /// - for an execution of the reusable task (statemachine/task.asl.json) whose
    ///   input names the folder it works in (`"execution"` and `"step"`, as a
    ///   pipeline passes them to its steps), that step's folder
    ///   `s3://<bucket>/<prefix><execution>/<step>/`: never the whole pipeline's,
    ///   whose other steps may still run.
    ///
    /// Empty while it runs or without a valid name. Input the event does not carry
    /// (`inputDetails.included` false, over EventBridge's size) gives the first only:
    /// the step's tasks then stop with the pipeline's end, or with their own state's
    /// timeout.
    pub fn tasks_scopes(&self, config: &HandoffConfig) -> Vec<S3Location> {
        if !self.has_ended() {
            return vec![];
        }
        let location = |key: String| S3Location {
            bucket: config.bucket.clone(),
            key,
        };
        let mut scopes = Vec::new();
        if let Some(layout) = self.name.as_deref().and_then(|n| config.layout(n).ok()) {
            scopes.push(location(layout.key("")));
        }
        if let Some((execution, step)) = self.input_folder()
            && let Ok(layout) = config.layout(&execution)
        {
            let step_folder = location(layout.key(&format!("{step}/")));
            if !scopes.iter().any(|s| step_folder.key.starts_with(&s.key)) {
                scopes.push(step_folder);
            }
        }
        scopes
    }

    /// The execution this one is a step of ([`STARTED_BY_KEY`] in its input), when the
    /// event carries the input.
    pub fn started_by(&self) -> Option<String> {
        let input = self.input_value()?;
        let arn = input.get(STARTED_BY_KEY)?.as_str()?;
        arn.starts_with("arn:").then(|| arn.to_string())
    }

    fn input_value(&self) -> Option<serde_json::Value> {
        match self.input.as_ref()? {
            serde_json::Value::String(text) => serde_json::from_str(text).ok(),
            other => Some(other.clone()),
        }
    }

    /// `"execution"` and `"step"` of the input (JSON text), when both are valid names.
    fn input_folder(&self) -> Option<(String, String)> {
        let input = self.input_value()?;
        let execution = input.get("execution")?.as_str()?;
        let step = input.get("step")?.as_str()?;
        crate::handoff::validate_execution_name(execution).ok()?;
        crate::handoff::validate_step(step).ok()?;
        Some((execution.to_string(), step.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(status: &str, name: &str) -> ExecutionStatusChange {
        ExecutionStatusChange {
            name: Some(name.into()),
            status: Some(status.into()),
            stop_date: Some(1_796_392_801_250),
            ..Default::default()
        }
    }

    #[test]
    fn an_ended_execution_scopes_its_own_prefix_and_stop_time() {
        let config = HandoffConfig::for_bucket("b");
        for status in ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"] {
            let (location, at) = ended(status, "run-1")
                .abandoned_uploads_scope(&config)
                .unwrap();
            assert_eq!(
                (location.bucket.as_str(), location.key.as_str()),
                ("b", "executions/run-1/")
            );
            assert_eq!(at.as_secs_f64(), 1_796_392_801.25);
        }
        assert_eq!(
            ended("RUNNING", "run-1").abandoned_uploads_scope(&config),
            None
        );
        assert_eq!(
            ended("FAILED", "a/b").abandoned_uploads_scope(&config),
            None,
            "a name that would escape its prefix"
        );
        let mut no_stop = ended("FAILED", "run-1");
        no_stop.stop_date = None;
        assert_eq!(no_stop.abandoned_uploads_scope(&config), None);
    }

    #[test]
    fn an_ended_execution_scopes_its_tasks_by_folder_and_a_step_by_its_input() {
        let config = HandoffConfig::for_bucket("b");
        let keys = |change: &ExecutionStatusChange| {
            change
                .tasks_scopes(&config)
                .into_iter()
                .map(|s| format!("s3://{}/{}", s.bucket, s.key))
                .collect::<Vec<_>>()
        };
        // A pipeline, or any execution without a folder in its input: its own.
        let mut pipeline = ended("ABORTED", "demo-1");
        pipeline.input = Some(r#"{"input": "s3://b/inbox/x"}"#.into());
        assert_eq!(keys(&pipeline), ["s3://b/executions/demo-1/"]);
        // A pipeline's step (the reusable task, input from the pipeline): also the
        // step's folder in the pipeline's, not the pipeline's whole folder.
        let mut step = ended("ABORTED", "0b6c1f7e-2d4a");
        step.input =
            Some(r#"{"taskDefinition": "arn:td", "execution": "demo-7", "step": "task1"}"#.into());
        assert_eq!(
            keys(&step),
            [
                "s3://b/executions/0b6c1f7e-2d4a/",
                "s3://b/executions/demo-7/task1/"
            ]
        );
        // Input as a JSON value rather than text is read the same way.
        step.input = Some(serde_json::json!({"execution": "demo-7", "step": "task1"}));
        assert_eq!(keys(&step)[1], "s3://b/executions/demo-7/task1/");
        // A standalone reusable task names its own folder: once.
        let mut own = ended("FAILED", "run-3");
        own.input = Some(r#"{"execution": "run-3", "step": "task"}"#.into());
        assert_eq!(keys(&own), ["s3://b/executions/run-3/"]);
        // Names that would escape their folder, or none at all, add nothing.
        for input in [
            r#"{"execution": "a/b", "step": "task1"}"#,
            r#"{"execution": "demo-7", "step": "../x"}"#,
            r#"{"execution": "demo-7"}"#,
            "not json",
        ] {
            let mut odd = ended("FAILED", "run-4");
            odd.input = Some(input.into());
            assert_eq!(keys(&odd), ["s3://b/executions/run-4/"], "{input}");
        }
        // Still running: nothing to stop.
        assert!(keys(&ended("RUNNING", "run-5")).is_empty());
        // Without input in the event (over EventBridge's size): its own folder.
        assert_eq!(
            keys(&ended("TIMED_OUT", "run-6")),
            ["s3://b/executions/run-6/"]
        );
    }

    #[test]
    fn an_unreadable_input_does_not_hide_the_status_change() {
        let detail: ExecutionStatusChange = serde_json::from_value(serde_json::json!({
            "name": "n", "status": "FAILED", "stopDate": 1, "input": 7, "inputDetails": {"included": true}
        }))
        .unwrap();
        assert!(detail.has_ended());
        assert_eq!(detail.stopped_at(), Some(DateTime::from_millis(1)));
    }

    #[test]
    fn a_later_redrive_supersedes_an_ended_attempt_and_keeps_its_new_tasks() {
        let stopped = DateTime::from_secs(1_000);
        let at = DateTime::from_secs;
        let failed = Some("FAILED");
        // Never redriven, or redriven before this attempt ended: this event is current.
        assert_eq!(
            superseding_redrive(&stopped, Some(0), failed, None, 0),
            None
        );
        assert_eq!(
            superseding_redrive(&stopped, Some(1), failed, Some(at(900)), 1),
            None
        );
        // Redriven after it ended (the late event of the failed attempt).
        assert_eq!(
            superseding_redrive(&stopped, Some(0), Some("RUNNING"), Some(at(1_005)), 1),
            Some(at(1_005))
        );
        assert_eq!(
            superseding_redrive(&stopped, None, failed, Some(at(1_005)), 1),
            Some(at(1_005))
        );
        // A lower count in the event says so even with clocks a little apart.
        assert_eq!(
            superseding_redrive(&stopped, Some(0), failed, Some(at(999)), 1),
            Some(at(999))
        );
        // Running again, or waiting to be, before its redrive date is newer: from the stop.
        assert_eq!(
            superseding_redrive(&stopped, Some(0), Some("PENDING_REDRIVE"), None, 0),
            Some(stopped)
        );
        assert_eq!(
            superseding_redrive(&stopped, Some(1), Some("RUNNING"), Some(at(900)), 1),
            Some(stopped)
        );
        let redrive = at(1_005);
        assert!(task_of_ended_attempt(Some(&at(990)), None, None, None));
        assert!(task_of_ended_attempt(None, None, None, None));
        assert!(
            task_of_ended_attempt(Some(&at(1_001)), Some(&redrive), None, None),
            "created before the redrive"
        );
        assert!(
            !task_of_ended_attempt(Some(&at(1_006)), Some(&redrive), None, None),
            "the redriven attempt's"
        );
        assert!(
            !task_of_ended_attempt(None, Some(&redrive), None, None),
            "unknown: left to its own heartbeat"
        );
        // A step's end: only the tasks of that step's execution, not the next attempt's
        // (a redriven pipeline's new execution of the step, in the same folder).
        let step = Some("arn:aws:states:us-east-1:1:execution:task:abc-task1-0");
        assert!(task_of_ended_attempt(Some(&at(990)), None, step, step));
        assert!(!task_of_ended_attempt(
            Some(&at(990)),
            None,
            Some("arn:aws:states:us-east-1:1:execution:task:abc-task1-1"),
            step
        ));
        assert!(
            task_of_ended_attempt(Some(&at(990)), None, None, step),
            "a task of before BATON_EXECUTION"
        );
        // A pipeline's end: its steps' tasks name the steps, not the pipeline.
        assert!(task_of_ended_attempt(Some(&at(990)), None, step, None));
    }

    #[test]
    fn a_step_names_the_execution_it_belongs_to() {
        let mut step = ended("FAILED", "0b6c-task1-0");
        step.input = Some(
            r#"{"execution": "demo-7", "step": "task1", "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": "arn:aws:states:us-east-1:1:execution:p:demo-7"}"#
                .into(),
        );
        assert_eq!(
            step.started_by().as_deref(),
            Some("arn:aws:states:us-east-1:1:execution:p:demo-7")
        );
        assert_eq!(ended("FAILED", "run-1").started_by(), None);
        let detail: ExecutionStatusChange = serde_json::from_value(serde_json::json!({
            "name": "n", "status": "FAILED", "stopDate": 1, "redriveCount": 2, "redriveStatus": "REDRIVABLE"
        }))
        .unwrap();
        assert_eq!(detail.redrive_count, Some(2));
        for odd in [
            serde_json::json!("3"),
            serde_json::json!(null),
            serde_json::json!({"n": 1}),
        ] {
            let detail: ExecutionStatusChange = serde_json::from_value(serde_json::json!({
                "name": "n", "status": "FAILED", "stopDate": 1, "redriveCount": odd
            }))
            .unwrap();
            assert!(detail.has_ended(), "an odd count does not hide the end");
        }
    }

    #[test]
    fn status_changes_are_told_from_ecs_events() {
        assert!(is_status_change(
            &serde_json::json!({"detail-type": DETAIL_TYPE})
        ));
        assert!(!is_status_change(
            &serde_json::json!({"detail-type": "ECS Task State Change"})
        ));
    }
}
