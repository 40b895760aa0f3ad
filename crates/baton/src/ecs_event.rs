//! The "ECS Task State Change" event and the watchdog's verdict on it.
//!
//! `aws_lambda_events` has no typed struct for this event, so the detail is
//! modelled here: every field optional, unknown fields ignored. [`verdict`] is the
//! pure decision behind the watchdog, implementing the design's error table.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::callback::TaskToken;
use crate::error::{Error, names};
use crate::limits::{fit_json_cause, truncate_chars};

pub const DETAIL_TYPE: &str = "ECS Task State Change";
pub const SOURCE: &str = "aws.ecs";
/// The environment variable that carries the task token into the container.
pub const TOKEN_VARIABLE: &str = "TASK_TOKEN";

/// The EventBridge envelope around an ECS task state change.
pub type TaskStateChangeEvent = EventBridgeEvent<TaskStateChange>;

/// `detail` of an "ECS Task State Change" event (also what `DescribeTasks` says
/// of a task, once converted).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskStateChange {
    pub task_arn: Option<String>,
    pub cluster_arn: Option<String>,
    pub task_definition_arn: Option<String>,
    pub group: Option<String>,
    pub started_by: Option<String>,
    pub launch_type: Option<String>,
    pub last_status: Option<String>,
    pub desired_status: Option<String>,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    pub stopped_at: Option<String>,
    pub containers: Option<Vec<Container>>,
    pub overrides: Option<Overrides>,
    pub version: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Container {
    pub name: Option<String>,
    pub exit_code: Option<i64>,
    pub last_status: Option<String>,
    pub reason: Option<String>,
    pub container_arn: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Overrides {
    pub container_overrides: Option<Vec<ContainerOverride>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerOverride {
    pub name: Option<String>,
    pub environment: Option<Vec<KeyValue>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeyValue {
    pub name: Option<String>,
    pub value: Option<String>,
}

#[cfg(feature = "ecs")]
impl Overrides {
    /// The overrides `DescribeTasks` returns, in the event's model.
    pub fn from_sdk(overrides: &aws_sdk_ecs::types::TaskOverride) -> Overrides {
        Overrides {
            container_overrides: Some(
                overrides
                    .container_overrides()
                    .iter()
                    .map(|c| ContainerOverride {
                        name: c.name().map(String::from),
                        environment: Some(
                            c.environment()
                                .iter()
                                .map(|kv| KeyValue {
                                    name: kv.name().map(String::from),
                                    value: kv.value().map(String::from),
                                })
                                .collect(),
                        ),
                    })
                    .collect(),
            ),
        }
    }
}

/// Parse an EventBridge event and check it is an ECS task state change.
pub fn parse_event(value: serde_json::Value) -> Result<TaskStateChangeEvent, Error> {
    let event: TaskStateChangeEvent = serde_json::from_value(value).map_err(|e| {
        Error::InvalidInput(format!(
            "not an EventBridge ECS Task State Change event: {e}"
        ))
    })?;
    if event.detail_type != DETAIL_TYPE || event.source != SOURCE {
        return Err(Error::InvalidInput(format!(
            "expected source {SOURCE:?} and detail-type {DETAIL_TYPE:?}, got {:?} and {:?}",
            event.source, event.detail_type
        )));
    }
    Ok(event)
}

impl TaskStateChange {
    pub fn is_stopped(&self) -> bool {
        self.last_status.as_deref() == Some("STOPPED")
    }

    /// The task id: the last segment of the task ARN.
    pub fn task_id(&self) -> Option<&str> {
        self.task_arn
            .as_deref()
            .and_then(|arn| arn.rsplit('/').next())
    }

    /// The task token from any container override's environment.
    pub fn token(&self) -> Option<&str> {
        self.override_variable(TOKEN_VARIABLE)
    }

    /// A variable set, not empty, in any container override's environment.
    pub fn override_variable(&self, name: &str) -> Option<&str> {
        self.overrides
            .as_ref()?
            .container_overrides
            .as_ref()?
            .iter()
            .filter_map(|o| o.environment.as_ref())
            .flatten()
            .find(|kv| kv.name.as_deref() == Some(name))
            .and_then(|kv| kv.value.as_deref())
            .filter(|v| !v.is_empty())
    }

    /// Does the task write its output (`BATON_OUTPUT`) under `prefix` (a bucket and
    /// key prefix, such as an execution's `executions/<name>/`)?
    pub fn output_under(&self, prefix: &crate::payload::S3Location) -> bool {
        self.override_variable("BATON_OUTPUT")
            .and_then(|uri| crate::payload::S3Location::parse(uri).ok())
            .is_some_and(|o| o.bucket == prefix.bucket && o.key.starts_with(&prefix.key))
    }

    /// Where a stopped Baton task wrote its output (`BATON_OUTPUT`, a prefix), and
    /// when it stopped: the multipart uploads under that prefix begun before then
    /// are its own, left open if it was killed mid-upload. `None` for a task that has
    /// not stopped, is not Baton's, or whose event says no stop time.
    pub fn abandoned_uploads_scope(
        &self,
    ) -> Option<(crate::payload::S3Location, aws_smithy_types::DateTime)> {
        if !self.is_stopped() {
            return None;
        }
        let output =
            crate::payload::S3Location::parse(self.override_variable("BATON_OUTPUT")?).ok()?;
        if output.key.is_empty() {
            return None; // never the whole bucket
        }
        let stopped_at = aws_smithy_types::DateTime::from_str(
            self.stopped_at.as_deref()?,
            aws_smithy_types::date_time::Format::DateTime,
        )
        .ok()?;
        Some((output, stopped_at))
    }

    fn containers(&self) -> &[Container] {
        self.containers.as_deref().unwrap_or(&[])
    }
}

/// What the watchdog should do about one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Not a STOPPED event (a Spot warning arrives while still RUNNING): nothing to do.
    NotStopped { last_status: Option<String> },
    /// STOPPED, but the event carries no overrides at all: look them up with
    /// `DescribeTasks` and decide again.
    OverridesMissing,
    /// No task token anywhere: not a callback task.
    NoToken,
    /// Fail the task token with this error and cause.
    Fail {
        token: TaskToken,
        error: &'static str,
        cause: String,
    },
}

/// Stop codes that mean someone or something stopped the task from outside.
const EXTERNAL_STOP_CODES: [&str; 4] = [
    "UserInitiated",
    "ServiceSchedulerInitiated",
    "SpotInterruption",
    "TerminationNotice",
];

/// Decide what a task state change means for the task's callback.
///
/// `logs` says where the task's logs are, for the cause, when the caller knows.
pub fn verdict(detail: &TaskStateChange, logs: Option<&str>) -> Verdict {
    if !detail.is_stopped() {
        return Verdict::NotStopped {
            last_status: detail.last_status.clone(),
        };
    }
    if detail.overrides.is_none() {
        return Verdict::OverridesMissing;
    }
    let Some(token) = detail.token().and_then(|t| TaskToken::new(t).ok()) else {
        return Verdict::NoToken;
    };
    Verdict::Fail {
        token,
        error: error_name(detail),
        cause: cause(detail, logs),
    }
}

/// The error-table row for a stopped task that never called back. When several
/// rows apply, the first of these wins: failed to start, out of memory, stopped
/// from outside, a container exited non-zero, every container exited 0.
pub fn error_name(detail: &TaskStateChange) -> &'static str {
    let stop_code = detail.stop_code.as_deref().unwrap_or("");
    let containers = detail.containers();
    if stop_code == "TaskFailedToStart" {
        return names::TASK_FAILED_TO_START;
    }
    let oom = containers.iter().any(|c| {
        c.reason
            .as_deref()
            .is_some_and(|r| r.starts_with("OutOfMemoryError"))
    });
    if oom {
        return names::OUT_OF_MEMORY;
    }
    if EXTERNAL_STOP_CODES.contains(&stop_code) {
        return names::TASK_STOPPED;
    }
    if containers
        .iter()
        .any(|c| c.exit_code.is_some_and(|code| code != 0))
    {
        return names::CONTAINER_EXITED;
    }
    if !containers.is_empty() && containers.iter().all(|c| c.exit_code == Some(0)) {
        return names::NO_CALLBACK;
    }
    // No containers, or exit codes unknown, and no stop code we know: the task
    // stopped without calling back, for a reason the cause spells out.
    names::TASK_STOPPED
}

/// Longest text taken from any one field of the event into the cause, so that the
/// cause stays valid JSON within the 32,768-character limit.
const CAUSE_FIELD_MAX_CHARS: usize = 2_048;
/// Most containers listed in a cause.
const CAUSE_MAX_CONTAINERS: usize = 10;

fn cut(s: &Option<String>) -> Option<&str> {
    s.as_deref()
        .map(|s| truncate_chars(s, CAUSE_FIELD_MAX_CHARS))
}

/// The failure cause: a JSON object with what a person needs to find out why.
pub fn cause(detail: &TaskStateChange, logs: Option<&str>) -> String {
    cause_explained(
        detail,
        logs,
        "the task stopped without calling back; failed by the Baton watchdog",
    )
}

fn cause_explained(detail: &TaskStateChange, logs: Option<&str>, explanation: &str) -> String {
    let containers: Vec<_> = detail
        .containers()
        .iter()
        .take(CAUSE_MAX_CONTAINERS)
        .map(|c| {
            json!({
                "name": cut(&c.name),
                "exitCode": c.exit_code,
                "reason": cut(&c.reason),
            })
        })
        .collect();
    let mut cause = json!({
        "taskArn": cut(&detail.task_arn),
        "clusterArn": cut(&detail.cluster_arn),
        "taskDefinitionArn": cut(&detail.task_definition_arn),
        "stopCode": cut(&detail.stop_code),
        "stoppedReason": cut(&detail.stopped_reason),
        "stoppedAt": cut(&detail.stopped_at),
        "containers": containers,
        "explanation": explanation,
    });
    if let Some(logs) = logs {
        cause["logs"] = json!(truncate_chars(logs, CAUSE_FIELD_MAX_CHARS));
    }
    // The pipeline parses this cause with States.StringToJson: fields shrink, the
    // text is never cut.
    fit_json_cause(&cause, CAUSE_FIELD_MAX_CHARS)
}

/// The `.sync` pipeline's reading of a failed task: Step Functions fails a `.sync`
/// state whose essential container exited non-zero (or never ran) with
/// `States.TaskFailed` and the task's description (DescribeTasks, PascalCase) as
/// the cause; the same error table as the watchdog's turns that into a `Baton.*`
/// error, and says whether the pipeline should run the task again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncVerdict {
    pub error: &'static str,
    pub cause: String,
    /// Failed to start, or stopped by a Spot reclaim or Fargate maintenance.
    pub retryable: bool,
}

/// Stop codes of stops AWS made, not a user: the task deserves another run.
const RECLAIM_STOP_CODES: &[&str] = &["SpotInterruption", "TerminationNotice"];

pub fn sync_verdict(task_failed_cause: &str, logs: Option<&str>) -> SyncVerdict {
    let detail = serde_json::from_str::<serde_json::Value>(task_failed_cause)
        .ok()
        .filter(serde_json::Value::is_object)
        .map(|v| camel_case_keys(&v))
        .and_then(|v| serde_json::from_value::<TaskStateChange>(v).ok());
    let Some(detail) = detail else {
        let cause = json!({
            "message": "the .sync task failed and its cause is not a task description",
            "original": truncate_chars(task_failed_cause, CAUSE_FIELD_MAX_CHARS),
        });
        return SyncVerdict {
            error: names::TASK_STOPPED,
            cause: fit_json_cause(&cause, CAUSE_FIELD_MAX_CHARS),
            retryable: false,
        };
    };
    let error = error_name(&detail);
    let stop_code = detail.stop_code.as_deref().unwrap_or("");
    let retryable = error == names::TASK_FAILED_TO_START
        || (error == names::TASK_STOPPED && RECLAIM_STOP_CODES.contains(&stop_code));
    SyncVerdict {
        error,
        cause: cause_explained(
            &detail,
            logs,
            "the .sync task failed (States.TaskFailed); read by the Baton watchdog",
        ),
        retryable,
    }
}

/// DescribeTasks as Step Functions returns it (PascalCase keys, epoch timestamps)
/// in the event's model (camelCase keys, text timestamps).
fn camel_case_keys(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| {
                    let mut chars = k.chars();
                    let key = match chars.next() {
                        Some(first) => first.to_lowercase().chain(chars).collect(),
                        None => String::new(),
                    };
                    let v = match v {
                        Value::Number(n) if key.ends_with("At") => Value::String(n.to_string()),
                        other => camel_case_keys(other),
                    };
                    (key, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(camel_case_keys).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stopped(stop_code: &str, containers: Vec<Container>) -> TaskStateChange {
        TaskStateChange {
            task_arn: Some("arn:aws:ecs:us-east-1:111122223333:task/c/abc".into()),
            last_status: Some("STOPPED".into()),
            stop_code: Some(stop_code.into()),
            stopped_reason: Some("Essential container in task exited".into()),
            containers: Some(containers),
            overrides: Some(Overrides {
                container_overrides: Some(vec![ContainerOverride {
                    name: Some("worker".into()),
                    environment: Some(vec![KeyValue {
                        name: Some(TOKEN_VARIABLE.into()),
                        value: Some("tok".into()),
                    }]),
                }]),
            }),
            ..Default::default()
        }
    }

    fn container(exit_code: Option<i64>, reason: Option<&str>) -> Container {
        Container {
            name: Some("worker".into()),
            exit_code,
            reason: reason.map(String::from),
            ..Default::default()
        }
    }

    /// The environment of `stopped`'s one container override.
    fn environment(detail: &mut TaskStateChange) -> &mut Vec<KeyValue> {
        let overrides = detail.overrides.as_mut().unwrap();
        let container = &mut overrides.container_overrides.as_mut().unwrap()[0];
        container.environment.as_mut().unwrap()
    }

    /// Replace the token in `stopped`'s one container override.
    fn set_token(detail: &mut TaskStateChange, token: String) {
        environment(detail)[0].value = Some(token);
    }

    fn error_of(detail: &TaskStateChange) -> &'static str {
        match verdict(detail, None) {
            Verdict::Fail { error, .. } => error,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn abandoned_uploads_are_scoped_to_the_tasks_output_and_stop_time() {
        let mut detail = stopped("EssentialContainerExited", vec![container(Some(137), None)]);
        assert_eq!(
            detail.abandoned_uploads_scope(),
            None,
            "no BATON_OUTPUT, no stop time"
        );
        environment(&mut detail).push(KeyValue {
            name: Some("BATON_OUTPUT".into()),
            value: Some("s3://b/executions/run-1/task1/".into()),
        });
        assert_eq!(detail.abandoned_uploads_scope(), None, "no stop time");
        detail.stopped_at = Some("2026-12-04T14:00:01.250Z".into());
        let (output, at) = detail.abandoned_uploads_scope().unwrap();
        assert_eq!(
            (output.bucket.as_str(), output.key.as_str()),
            ("b", "executions/run-1/task1/")
        );
        assert_eq!(at.as_secs_f64(), 1_796_392_801.25);
        detail.last_status = Some("RUNNING".into());
        assert_eq!(
            detail.abandoned_uploads_scope(),
            None,
            "only a stopped task"
        );
        detail.last_status = Some("STOPPED".into());
        environment(&mut detail)[1].value = Some("s3://b".into());
        assert_eq!(
            detail.abandoned_uploads_scope(),
            None,
            "never a whole bucket"
        );
    }

    #[test]
    fn a_task_belongs_to_the_execution_whose_prefix_holds_its_output() {
        let mut detail = stopped("EssentialContainerExited", vec![]);
        let prefix = |key: &str| crate::payload::S3Location {
            bucket: "b".into(),
            key: key.into(),
        };
        assert!(
            !detail.output_under(&prefix("executions/run-1/")),
            "no BATON_OUTPUT"
        );
        environment(&mut detail).push(KeyValue {
            name: Some("BATON_OUTPUT".into()),
            value: Some("s3://b/executions/run-1/task1/".into()),
        });
        assert!(detail.output_under(&prefix("executions/run-1/")));
        assert!(!detail.output_under(&prefix("executions/run-10/")));
        assert!(!detail.output_under(&prefix("executions/run-1/task2/")));
        let other_bucket = crate::payload::S3Location {
            bucket: "c".into(),
            key: "executions/run-1/".into(),
        };
        assert!(!detail.output_under(&other_bucket));
    }

    #[test]
    fn rows_of_the_error_table() {
        let cases = [
            (
                "TaskFailedToStart",
                vec![container(None, None)],
                names::TASK_FAILED_TO_START,
            ),
            (
                "EssentialContainerExited",
                vec![container(
                    Some(137),
                    Some("OutOfMemoryError: Container killed due to memory usage"),
                )],
                names::OUT_OF_MEMORY,
            ),
            (
                "UserInitiated",
                vec![container(Some(143), None)],
                names::TASK_STOPPED,
            ),
            (
                "ServiceSchedulerInitiated",
                vec![container(Some(0), None)],
                names::TASK_STOPPED,
            ),
            (
                "SpotInterruption",
                vec![container(Some(143), None)],
                names::TASK_STOPPED,
            ),
            (
                "TerminationNotice",
                vec![container(None, None)],
                names::TASK_STOPPED,
            ),
            (
                "EssentialContainerExited",
                vec![container(Some(3), None)],
                names::CONTAINER_EXITED,
            ),
            (
                "EssentialContainerExited",
                vec![container(Some(0), None)],
                names::NO_CALLBACK,
            ),
        ];
        for (code, containers, want) in cases {
            assert_eq!(error_of(&stopped(code, containers)), want, "{code}");
        }
    }

    #[test]
    fn precedence_when_several_rows_apply() {
        // failed to start beats out of memory
        let d = stopped(
            "TaskFailedToStart",
            vec![container(Some(137), Some("OutOfMemoryError: x"))],
        );
        assert_eq!(error_of(&d), names::TASK_FAILED_TO_START);
        // out of memory beats a user stop
        let d = stopped(
            "UserInitiated",
            vec![container(Some(137), Some("OutOfMemoryError: x"))],
        );
        assert_eq!(error_of(&d), names::OUT_OF_MEMORY);
        // a user stop beats a non-zero exit
        let d = stopped("UserInitiated", vec![container(Some(1), None)]);
        assert_eq!(error_of(&d), names::TASK_STOPPED);
        // one sidecar non-zero beats the others' zero
        let d = stopped(
            "EssentialContainerExited",
            vec![container(Some(0), None), container(Some(2), None)],
        );
        assert_eq!(error_of(&d), names::CONTAINER_EXITED);
    }

    #[test]
    fn edge_cases_fall_back_to_task_stopped() {
        assert_eq!(
            error_of(&stopped("EssentialContainerExited", vec![])),
            names::TASK_STOPPED
        );
        let mut d = stopped("EssentialContainerExited", vec![]);
        d.containers = None;
        assert_eq!(error_of(&d), names::TASK_STOPPED);
        let d = stopped("SomethingNew", vec![container(None, None)]);
        assert_eq!(error_of(&d), names::TASK_STOPPED);
        // a missing exit code beside a zero one is not "every container exited 0"
        let d = stopped(
            "EssentialContainerExited",
            vec![container(Some(0), None), container(None, None)],
        );
        assert_eq!(error_of(&d), names::TASK_STOPPED);
        // unknown stop code but a non-zero exit is still a container exit
        let d = stopped("SomethingNew", vec![container(Some(9), None)]);
        assert_eq!(error_of(&d), names::CONTAINER_EXITED);
    }

    #[test]
    fn only_stopped_is_acted_on() {
        for status in [Some("RUNNING"), Some("DEPROVISIONING"), None] {
            let mut d = stopped("SpotInterruption", vec![]);
            d.last_status = status.map(String::from);
            assert!(matches!(verdict(&d, None), Verdict::NotStopped { .. }));
        }
    }

    #[test]
    fn a_token_of_any_length_is_acted_on() {
        // 2,048 characters is the documented maximum; the watchdog used to ignore
        // tokens over 1,024 and leave the execution hanging.
        for len in [2_048, 5_000] {
            let mut d = stopped("EssentialContainerExited", vec![container(Some(1), None)]);
            set_token(&mut d, "T".repeat(len));
            match verdict(&d, None) {
                Verdict::Fail { token, error, .. } => {
                    assert_eq!(token.expose().len(), len);
                    assert_eq!(error, names::CONTAINER_EXITED);
                }
                other => panic!("{len}: {other:?}"),
            }
        }
    }

    #[test]
    fn no_token_and_missing_overrides() {
        let mut d = stopped("EssentialContainerExited", vec![container(Some(1), None)]);
        d.overrides = Some(Overrides::default());
        assert_eq!(verdict(&d, None), Verdict::NoToken);
        d.overrides = None;
        assert_eq!(verdict(&d, None), Verdict::OverridesMissing);
        // an empty token value is no token
        let mut d = stopped("EssentialContainerExited", vec![]);
        set_token(&mut d, String::new());
        assert_eq!(verdict(&d, None), Verdict::NoToken);
    }

    #[test]
    fn huge_reasons_keep_the_cause_valid_json_within_the_limit() {
        // Quotes and control characters double or sextuple when escaped.
        let huge = "é\"\u{7}".repeat(40_000);
        let mut d = stopped("EssentialContainerExited", vec![]);
        d.stopped_reason = Some(huge.clone());
        d.containers = Some((0..50).map(|_| container(Some(1), Some(&huge))).collect());
        let Verdict::Fail { cause, .. } = verdict(&d, Some("/ecs/baton/abc")) else {
            panic!("expected failure");
        };
        assert!(cause.chars().count() <= crate::limits::SFN_CAUSE_MAX_CHARS);
        let v: serde_json::Value = serde_json::from_str(&cause).expect("cause is JSON");
        assert_eq!(
            v["containers"].as_array().unwrap().len(),
            CAUSE_MAX_CONTAINERS
        );
        assert_eq!(v["logs"], "/ecs/baton/abc");
    }

    #[test]
    fn cause_names_the_task_and_containers() {
        let d = stopped(
            "EssentialContainerExited",
            vec![container(Some(3), Some("boom"))],
        );
        let v: serde_json::Value = serde_json::from_str(&cause(&d, None)).unwrap();
        assert_eq!(
            v["taskArn"],
            "arn:aws:ecs:us-east-1:111122223333:task/c/abc"
        );
        assert_eq!(v["stopCode"], "EssentialContainerExited");
        assert_eq!(v["containers"][0]["exitCode"], 3);
        assert_eq!(v["containers"][0]["reason"], "boom");
        assert_eq!(v["containers"][0]["name"], "worker");
    }

    #[test]
    fn task_id_is_the_last_arn_segment() {
        let d = stopped("x", vec![]);
        assert_eq!(d.task_id(), Some("abc"));
    }

    #[test]
    fn sync_verdicts_read_the_task_description_step_functions_gives() {
        let description = |stop_code: &str, containers: serde_json::Value| {
            json!({
                "TaskArn": "arn:aws:ecs:us-east-1:111122223333:task/c/abc",
                "LastStatus": "STOPPED",
                "StopCode": stop_code,
                "StoppedReason": "Essential container in task exited",
                "StoppedAt": 1732312345.123,
                "Containers": containers,
            })
            .to_string()
        };
        let cases = [
            (
                "EssentialContainerExited",
                json!([{"Name": "worker", "ExitCode": 3}]),
                names::CONTAINER_EXITED,
                false,
            ),
            (
                "EssentialContainerExited",
                json!([{"Name": "worker", "ExitCode": 137, "Reason": "OutOfMemoryError: Container killed due to memory usage"}]),
                names::OUT_OF_MEMORY,
                false,
            ),
            (
                "TaskFailedToStart",
                json!([{"Name": "worker", "Reason": "CannotPullContainerError: x"}]),
                names::TASK_FAILED_TO_START,
                true,
            ),
            (
                "SpotInterruption",
                json!([{"Name": "worker", "ExitCode": 143}]),
                names::TASK_STOPPED,
                true,
            ),
            (
                "TerminationNotice",
                json!([{"Name": "worker"}]),
                names::TASK_STOPPED,
                true,
            ),
            (
                "UserInitiated",
                json!([{"Name": "worker", "ExitCode": 143}]),
                names::TASK_STOPPED,
                false,
            ),
        ];
        for (stop_code, containers, error, retryable) in cases {
            let v = sync_verdict(&description(stop_code, containers), None);
            assert_eq!((v.error, v.retryable), (error, retryable), "{stop_code}");
            let cause: serde_json::Value = serde_json::from_str(&v.cause).unwrap();
            assert_eq!(cause["stopCode"], stop_code);
            assert_eq!(
                cause["taskArn"],
                "arn:aws:ecs:us-east-1:111122223333:task/c/abc"
            );
        }
        let odd = sync_verdict("not json at all", None);
        assert_eq!((odd.error, odd.retryable), (names::TASK_STOPPED, false));
        assert!(serde_json::from_str::<serde_json::Value>(&odd.cause).is_ok());
    }
}
