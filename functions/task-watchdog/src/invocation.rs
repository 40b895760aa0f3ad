//! What the watchdog is invoked with, typed. One Lambda answers four kinds of
//! request, told apart by their keys ([`Invocation::from_value`]); the SQS batch
//! and the single EventBridge event carry the same events ([`Event`]).

use aws_lambda_events::sqs::SqsEvent;
use baton::Error;
use baton::ecs_event::{self, TaskStateChangeEvent};
use baton::execution_event::{self, ExecutionStatusChange};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::sync_verdict;
use crate::timed_out_state::{self as timed_out, TimedOutState};

/// The key of a batch from the stack's SQS queue (`{"Records": […]}`).
pub const BATCH_KEY: &str = "Records";

/// One invocation of the watchdog.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// `{"stoppedTask": "<States.TaskFailed cause>"}` from the `.sync` pipeline
    /// ([`crate::sync_verdict`]).
    SyncVerdict { cause: String },
    /// `{"taskTimedOut": {…}}` from the reusable task state machine
    /// ([`crate::timed_out`]).
    TaskTimedOut(TimedOutState),
    /// `{"Records": […]}`: EventBridge events through the stack's SQS queue, one a
    /// message body, each read on its own ([`Event::from_value`]).
    Batch(SqsEvent),
    /// Anything else: one EventBridge event.
    Event(Event),
}

/// One EventBridge event the watchdog acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// "ECS Task State Change" ([`crate::task_stopped`]).
    TaskStopped(Box<TaskStateChangeEvent>),
    /// "Step Functions Execution Status Change": its `detail`
    /// ([`crate::execution_ended`]).
    ExecutionEnded(Box<ExecutionStatusChange>),
}

impl Invocation {
    /// Which kind, by its keys, first match wins: a `stoppedTask` that is a string;
    /// a `taskTimedOut` (one that is not a [`TimedOutState`] is an error); a
    /// `Records` (one that is not an SQS batch is an error); anything else is one
    /// event ([`Event::from_value`]). Every error is `Baton.InvalidInput`.
    pub fn from_value(payload: Value) -> Result<Invocation, Error> {
        if let Some(cause) = payload
            .get(sync_verdict::REQUEST_KEY)
            .and_then(Value::as_str)
        {
            return Ok(Invocation::SyncVerdict {
                cause: cause.to_string(),
            });
        }
        if let Some(request) = payload.get(timed_out::REQUEST_KEY) {
            let state: TimedOutState = serde_json::from_value(request.clone())
                .map_err(|e| Error::InvalidInput(format!("{}: {e}", timed_out::REQUEST_KEY)))?;
            return Ok(Invocation::TaskTimedOut(state));
        }
        if payload.get(BATCH_KEY).is_none() {
            return Event::from_value(payload).map(Invocation::Event);
        }
        let batch: SqsEvent = serde_json::from_value(payload)
            .map_err(|e| Error::InvalidInput(format!("not an SQS batch: {e}")))?;
        Ok(Invocation::Batch(batch))
    }
}

impl Event {
    /// An execution status change (by its `detail-type`), its `detail` read
    /// leniently: what cannot be read is an execution that has not ended, ignored.
    /// Anything else must be an ECS task state change ([`ecs_event::parse_event`]).
    pub fn from_value(event: Value) -> Result<Event, Error> {
        if execution_event::is_status_change(&event) {
            let detail: ExecutionStatusChange =
                serde_json::from_value(event.get("detail").cloned().unwrap_or_default())
                    .unwrap_or_default();
            return Ok(Event::ExecutionEnded(Box::new(detail)));
        }
        let event = ecs_event::parse_event(event)?;
        Ok(Event::TaskStopped(Box::new(event)))
    }
}

/// [`Invocation::from_value`], for serde: its error's message is the
/// `Baton.InvalidInput` error's.
impl<'de> Deserialize<'de> for Invocation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Invocation::from_value(Value::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// [`Event::from_value`], for serde.
impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Event::from_value(Value::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn events_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
    }

    fn sample(file: &str) -> Value {
        let path = events_dir().join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
    }

    /// The kind of an invocation, for the table below.
    fn kind(invocation: &Invocation) -> &'static str {
        match invocation {
            Invocation::SyncVerdict { .. } => "SyncVerdict",
            Invocation::TaskTimedOut(_) => "TaskTimedOut",
            Invocation::Batch(_) => "Batch",
            Invocation::Event(Event::TaskStopped(_)) => "TaskStopped",
            Invocation::Event(Event::ExecutionEnded(_)) => "ExecutionEnded",
        }
    }

    /// Every file in events/: the kind the watchdog reads it as, or `None` for the
    /// other Lambdas' events, which it rejects. A new file must be added here.
    fn expected(file: &str) -> Option<&'static str> {
        match file {
            f if f.starts_with("ecs-") => Some("TaskStopped"),
            "sfn-execution-failed.json" => Some("ExecutionEnded"),
            "sfn-task-timed-out.json" => Some("TaskTimedOut"),
            "sync-task-failed.json" => Some("SyncVerdict"),
            f if f.starts_with("prepare-input-") || f.starts_with("offload-output-") => None,
            f => panic!("events/{f}: say what the watchdog reads it as"),
        }
    }

    #[test]
    fn every_sample_event_is_read_as_its_kind() {
        let mut seen = 0;
        for entry in std::fs::read_dir(events_dir()).unwrap() {
            let file = entry.unwrap().file_name().to_string_lossy().into_owned();
            if !file.ends_with(".json") {
                continue;
            }
            let read = Invocation::from_value(sample(&file));
            match (expected(&file), read) {
                (Some(want), Ok(invocation)) => assert_eq!(kind(&invocation), want, "{file}"),
                (Some(want), Err(e)) => panic!("{file}: expected {want}, got {e}"),
                (None, Ok(invocation)) => panic!("{file}: read as {invocation:?}"),
                (None, Err(e)) => assert_eq!(e.name(), "Baton.InvalidInput", "{file}"),
            }
            seen += 1;
        }
        assert!(seen >= 18, "expected the sample events, found {seen}");
    }

    #[test]
    fn serde_reads_what_from_value_reads() {
        for file in [
            "ecs-out-of-memory.json",
            "sfn-execution-failed.json",
            "sfn-task-timed-out.json",
            "sync-task-failed.json",
        ] {
            let event = sample(file);
            let by_serde: Invocation = serde_json::from_value(event.clone()).unwrap();
            assert_eq!(by_serde, Invocation::from_value(event).unwrap(), "{file}");
        }
        let err = serde_json::from_value::<Invocation>(json!({"Records": 5})).unwrap_err();
        assert!(err.to_string().contains("not an SQS batch"), "{err}");
    }

    #[test]
    fn the_samples_are_read_whole() {
        let Invocation::SyncVerdict { cause } =
            Invocation::from_value(sample("sync-task-failed.json")).unwrap()
        else {
            panic!("not a .sync verdict");
        };
        assert!(cause.contains("EssentialContainerExited"));
        let Invocation::TaskTimedOut(state) =
            Invocation::from_value(sample("sfn-task-timed-out.json")).unwrap()
        else {
            panic!("not a timed-out state");
        };
        assert_eq!(
            (state.state.as_str(), state.heartbeat_seconds),
            ("task1", 300)
        );
        let Invocation::Event(Event::ExecutionEnded(detail)) =
            Invocation::from_value(sample("sfn-execution-failed.json")).unwrap()
        else {
            panic!("not an execution status change");
        };
        assert_eq!(
            (detail.name.as_deref(), detail.status.as_deref()),
            (Some("demo-1"), Some("FAILED"))
        );
    }

    #[test]
    fn a_batch_carries_the_sample_events() {
        let records: Vec<Value> = ["ecs-container-exited.json", "sfn-execution-failed.json"]
            .iter()
            .enumerate()
            .map(|(i, file)| json!({"messageId": i.to_string(), "body": sample(file).to_string()}))
            .collect();
        let Invocation::Batch(batch) = Invocation::from_value(json!({"Records": records})).unwrap()
        else {
            panic!("not a batch");
        };
        let kinds: Vec<_> = batch
            .records
            .iter()
            .map(|r| {
                let event: Value = serde_json::from_str(r.body.as_deref().unwrap()).unwrap();
                kind(&Invocation::Event(Event::from_value(event).unwrap()))
            })
            .collect();
        assert_eq!(kinds, ["TaskStopped", "ExecutionEnded"]);
    }

    #[test]
    fn the_keys_are_tried_in_order() {
        let timed_out = sample("sfn-task-timed-out.json")[timed_out::REQUEST_KEY].clone();
        let read = |v: Value| kind(&Invocation::from_value(v).unwrap());
        let both = json!({"stoppedTask": "{}", "taskTimedOut": timed_out, "Records": []});
        assert_eq!(read(both), "SyncVerdict");
        // A stoppedTask that is not a string is not one.
        let not_a_cause = json!({"stoppedTask": 5, "taskTimedOut": timed_out});
        assert_eq!(read(not_a_cause), "TaskTimedOut");
        assert_eq!(
            read(json!({"taskTimedOut": timed_out, "Records": 5})),
            "TaskTimedOut"
        );
        let mut status_change = sample("sfn-execution-failed.json");
        status_change["Records"] = json!([]);
        assert_eq!(read(status_change), "Batch");
    }

    fn invalid(payload: Value) -> String {
        match Invocation::from_value(payload) {
            Err(Error::InvalidInput(message)) => message,
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    #[test]
    fn what_cannot_be_read_is_invalid_input_with_the_same_messages() {
        assert_eq!(
            invalid(json!({"taskTimedOut": {"state": "RunTask1"}})),
            "taskTimedOut: missing field `executionArn`"
        );
        assert!(invalid(json!({"taskTimedOut": null})).starts_with("taskTimedOut: "));
        assert!(invalid(json!({"Records": 5})).starts_with("not an SQS batch: "));
        assert!(
            invalid(json!({"input": "s3://b/k"}))
                .starts_with("not an EventBridge ECS Task State Change event: ")
        );
        assert!(invalid(json!([1, 2])).starts_with("not an EventBridge ECS Task State Change"));
        let s3 = json!({
            "version": "0", "id": "1", "detail-type": "Object Created", "source": "aws.s3",
            "account": "1", "time": "2024-11-13T21:23:12Z", "region": "us-east-1",
            "resources": [], "detail": {}
        });
        assert!(invalid(s3).starts_with("expected source \"aws.ecs\""));
    }

    #[test]
    fn a_status_change_is_read_leniently() {
        let odd = json!({"detail-type": execution_event::DETAIL_TYPE, "detail": 5});
        assert_eq!(
            Invocation::from_value(odd).unwrap(),
            Invocation::Event(Event::ExecutionEnded(Box::default()))
        );
    }
}
