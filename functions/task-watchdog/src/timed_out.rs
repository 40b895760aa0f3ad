//! A callback task state that timed out: `HeartbeatSeconds` passed without a beat
//! (a frozen, deadlocked or wedged worker) or `TimeoutSeconds` ran out. Step
//! Functions does not stop the ECS task a `.waitForTaskToken` state started (AWS
//! docs: only `.sync` cancels its job), so the state machine catches the timeout and
//! invokes the watchdog with `{"taskTimedOut": …}`: it stops the state's tasks and
//! answers the typed error the execution fails with.

use serde_json::{Value, json};

use crate::handler::Watchdog;

pub use crate::timed_out_state::{
    CAUGHT_HEARTBEAT, CAUGHT_TIMEOUT, FIELDS, REQUEST_KEY, TimedOutState,
};

/// How stopping the state's tasks went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopping {
    /// These task ARNs were still running and are stopping (SIGTERM, then SIGKILL
    /// after the container's `stopTimeout`).
    Stopped(Vec<String>),
    /// ECS could not be asked, or refused (after the SDK's retries): the
    /// execution's end stops them (its status change reaches the watchdog through
    /// SQS, which retries a cleanup that fails and keeps it in the dead-letter
    /// queue after that).
    Failed(String),
    /// `BATON_CLUSTER` unset.
    NoCluster,
}

/// The folder a state's `BATON_OUTPUT` names, ending in `/` (so `…/task1` never
/// takes in `…/task10/`); an output that names no folder (a whole bucket) is an
/// error, never a scope.
fn output_folder(output: &str) -> Result<baton::payload::S3Location, String> {
    let mut location = baton::payload::S3Location::parse(output).map_err(|e| e.to_string())?;
    if location.key.trim_matches('/').is_empty() {
        return Err("names no folder".into());
    }
    if !location.key.ends_with('/') {
        location.key.push('/');
    }
    Ok(location)
}

fn task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// The state machine's answer: `{"Error": "Baton.Unresponsive"|"Baton.TimedOut",
/// "Cause": <JSON text>}`, which its Fail state raises (ErrorPath/CausePath).
pub fn answer(state: &TimedOutState, stopping: &Stopping) -> Value {
    let what = state.what();
    let (message, stopped) = match stopping {
        Stopping::Stopped(arns) if arns.is_empty() => (
            format!("{what}; no task of {} was still running", state.state),
            vec![],
        ),
        Stopping::Stopped(arns) => (
            format!(
                "{what}; task {} stopped",
                arns.iter()
                    .map(|a| task_id(a))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            arns.clone(),
        ),
        Stopping::Failed(e) => (
            format!(
                "{what}; its task could not be stopped now ({e}), the execution's end will stop it"
            ),
            vec![],
        ),
        Stopping::NoCluster => (
            format!("{what}; its task was not stopped (the watchdog has no BATON_CLUSTER)"),
            vec![],
        ),
    };
    let cause = json!({
        "message": message,
        "state": state.state,
        "heartbeatSeconds": state.heartbeat_seconds,
        "timeoutSeconds": state.timeout_seconds,
        "tasksStopped": stopped,
        "output": state.output,
    });
    json!({
        "Error": state.error(),
        "Cause": baton::limits::fit_json_cause(&cause, 4_096),
    })
}

impl Watchdog {
    /// A callback task state timed out: stop the tasks it started (every attempt's:
    /// they share its `BATON_OUTPUT`, and no other task writes there) and answer the
    /// typed error. Never an `Err` for ECS trouble: the error the user sees stays
    /// typed, and the execution's end (a status change the watchdog also handles,
    /// retried through SQS until it succeeds or reaches the dead-letter queue)
    /// stops what is left.
    pub async fn task_timed_out(&self, state: &TimedOutState) -> Value {
        let stopping = match (&self.cluster, output_folder(&state.output)) {
            (None, _) => Stopping::NoCluster,
            (Some(_), Err(e)) => Stopping::Failed(format!("BATON_OUTPUT {:?}: {e}", state.output)),
            (Some(cluster), Ok(scope)) => {
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
                match self.stop_tasks(cluster, &[scope], reason, |_| true).await {
                    Ok(report) => Stopping::Stopped(report.stopped),
                    Err(e) => Stopping::Failed(e.to_string()),
                }
            }
        };
        let answer = answer(state, &stopping);
        // The execution's ARN and the state are properties, never dimensions.
        baton::metrics::MetricSet::failure(state.error())
            .property("function", "task-watchdog")
            .property("executionArn", state.execution_arn.as_str())
            .property("state", state.state.as_str())
            .property(
                "tasksStopped",
                match &stopping {
                    Stopping::Stopped(arns) => arns.len(),
                    _ => 0,
                },
            )
            .emit();
        tracing::warn!(
            execution = state.execution_arn,
            state = state.state,
            error = state.error(),
            cause = answer["Cause"].as_str(),
            "a task state timed out"
        );
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton::error::names;

    fn request(caught: Value) -> Value {
        json!({
            "executionArn": "arn:aws:states:eu-west-1:123456789012:execution:baton:n1",
            "state": "RunTask1",
            "output": "s3://b/executions/n1/task1/",
            "heartbeatSeconds": 120,
            "timeoutSeconds": 86400,
            "timedOut": caught,
        })
    }

    fn state(caught: Value) -> TimedOutState {
        serde_json::from_value(request(caught)).unwrap()
    }

    fn cause(answer: &Value) -> Value {
        serde_json::from_str(answer["Cause"].as_str().unwrap()).unwrap()
    }

    #[test]
    fn a_missed_heartbeat_is_unresponsive_and_names_the_stopped_task() {
        let s = state(json!({"heartbeat": {"Error": "States.Timeout", "Cause": ""}}));
        let a = answer(
            &s,
            &Stopping::Stopped(vec!["arn:aws:ecs:eu-west-1:1:task/c/0f3e".into()]),
        );
        assert_eq!(a["Error"], "Baton.Unresponsive");
        let c = cause(&a);
        assert_eq!(c["message"], "no heartbeat for 120 s; task 0f3e stopped");
        assert_eq!(c["tasksStopped"][0], "arn:aws:ecs:eu-west-1:1:task/c/0f3e");
        assert_eq!(c["state"], "RunTask1");
    }

    #[test]
    fn a_state_timeout_is_timed_out() {
        let s = state(json!({"timeout": {"Error": "States.Timeout"}}));
        let a = answer(&s, &Stopping::Stopped(vec![]));
        assert_eq!(a["Error"], "Baton.TimedOut");
        assert_eq!(
            cause(&a)["message"],
            "ran longer than its 86400 s; no task of RunTask1 was still running"
        );
    }

    #[test]
    fn a_failed_stop_still_answers_the_typed_error() {
        let s = state(json!({"heartbeat": {}}));
        let a = answer(&s, &Stopping::Failed("ECS throttled".into()));
        assert_eq!(a["Error"], "Baton.Unresponsive");
        assert!(
            cause(&a)["message"]
                .as_str()
                .unwrap()
                .contains("the execution's end will stop it")
        );
        let a = answer(&s, &Stopping::NoCluster);
        assert!(
            cause(&a)["message"]
                .as_str()
                .unwrap()
                .contains("BATON_CLUSTER")
        );
    }

    #[test]
    fn the_fields_named_are_the_fields_read_and_each_is_required() {
        let full = request(json!({CAUGHT_TIMEOUT: {}}));
        let mut keys: Vec<&str> = full
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut fields = FIELDS.to_vec();
        keys.sort_unstable();
        fields.sort_unstable();
        assert_eq!(keys, fields);
        for field in FIELDS {
            let mut without = full.clone();
            without.as_object_mut().unwrap().remove(field);
            assert!(
                serde_json::from_value::<TimedOutState>(without).is_err(),
                "{field} is required"
            );
        }
        assert_eq!(
            state(json!({CAUGHT_HEARTBEAT: {}})).error(),
            names::UNRESPONSIVE
        );
        assert_eq!(state(json!({CAUGHT_TIMEOUT: {}})).error(), names::TIMED_OUT);
    }

    #[test]
    fn a_state_output_scopes_its_folder_and_never_a_whole_bucket() {
        let key = |o: &str| output_folder(o).map(|l| format!("{}:{}", l.bucket, l.key));
        assert_eq!(
            key("s3://b/executions/n1/task1/"),
            Ok("b:executions/n1/task1/".into())
        );
        assert_eq!(
            key("s3://b/executions/n1/task1"),
            Ok("b:executions/n1/task1/".into()),
            "never task10's folder too"
        );
        assert!(key("s3://b/").is_err());
        assert!(key("s3://b").is_err());
        assert!(key("not a uri").is_err());
    }

    #[test]
    fn unknown_or_missing_fields_are_an_error_not_a_guess() {
        assert!(serde_json::from_value::<TimedOutState>(json!({"state": "RunTask1"})).is_err());
    }
}
