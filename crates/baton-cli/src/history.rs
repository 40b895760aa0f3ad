//! Pure decisions over execution histories: reading only new events, backing off on
//! throttling, the step's own `Baton.*` error, and the ECS tasks and steps an
//! execution started.

use std::time::Duration;

use aws_sdk_sfn::types::{HistoryEvent, HistoryEventType};
use serde_json::Value;

/// How much of an execution's history has been read. Each poll reads the history
/// newest first (`reverseOrder`), page after page (`nextToken`) only while every
/// event of a page is new, so a poll costs one GetExecutionHistory call when fewer
/// than a page of events arrived since the last: no poll re-reads the whole history.
/// Only documented behaviour is relied on: a last page carries no `nextToken` ("If
/// nextToken is returned, there are more results available"), so there is no token
/// to keep from one poll to the next; reading backwards from the newest needs none.
/// An endpoint that ignores `reverseOrder` and paging (moto) returns every event in
/// one page: the cursor still keeps only the new ones, in order.
#[derive(Debug, Default, Clone)]
pub struct HistoryCursor {
    /// The highest event id handed out; ids grow with time.
    last_id: i64,
    /// This poll's new events, gathered page by page.
    gathered: Vec<HistoryEvent>,
}

impl HistoryCursor {
    /// A cursor that hands out only events after `last_id` (0: every event).
    pub fn after(last_id: i64) -> HistoryCursor {
        HistoryCursor {
            last_id,
            gathered: Vec::new(),
        }
    }

    pub fn last_id(&self) -> i64 {
        self.last_id
    }

    /// Take one page of this poll; true when the next page (`next_token`) must be
    /// read too: every event of this page was new, and there is one.
    pub fn take_page(&mut self, events: &[HistoryEvent], next_token: Option<&str>) -> bool {
        let mut all_new = true;
        for event in events {
            if event.id() > self.last_id {
                if !self.gathered.iter().any(|e| e.id() == event.id()) {
                    self.gathered.push(event.clone());
                }
            } else {
                all_new = false;
            }
        }
        all_new && !events.is_empty() && next_token.is_some_and(|t| !t.is_empty())
    }

    /// End the poll: its new events, oldest first.
    pub fn finish(&mut self) -> Vec<HistoryEvent> {
        let mut new = std::mem::take(&mut self.gathered);
        new.sort_by_key(|e| e.id());
        if let Some(last) = new.last() {
            self.last_id = last.id();
        }
        new
    }

    /// A poll that failed: forget its pages, read them again next time.
    pub fn abandon(&mut self) {
        self.gathered.clear();
    }
}

/// Whether an AWS error code means "slow down": Step Functions, CloudWatch Logs and
/// ECS answer `ThrottlingException`; S3 `SlowDown`; some older APIs `Throttling`,
/// `RequestLimitExceeded` or `TooManyRequestsException`.
pub fn is_throttling(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "ThrottlingException"
                | "Throttling"
                | "ThrottledException"
                | "TooManyRequestsException"
                | "RequestLimitExceeded"
                | "SlowDown"
                | "RequestThrottled"
                | "RequestThrottledException"
                | "ProvisionedThroughputExceededException"
        )
    )
}

/// The wait before retry `attempt` (0, 1, …) after throttling: exponential from
/// `base`, capped at `cap`, with "equal jitter" (half fixed, half random; `unit` is a
/// random number in [0, 1)), so that clients throttled together do not come back
/// together.
pub fn backoff(attempt: u32, base: Duration, cap: Duration, unit: f64) -> Duration {
    let exp = base.saturating_mul(2u32.saturating_pow(attempt.min(20)));
    let ceiling = exp.min(cap);
    let half = ceiling / 2;
    half + half.mul_f64(unit.clamp(0.0, 1.0))
}

/// The pause between two polls of a running execution: `base` after a poll that
/// found something new, growing by half at each idle poll up to `cap`.
pub fn poll_pause(idle_polls: u32, base: Duration, cap: Duration) -> Duration {
    let mut pause = base;
    for _ in 0..idle_polls.min(32) {
        pause = pause.mul_f64(1.5);
        if pause >= cap {
            return cap;
        }
    }
    pause
}

/// A small random number in [0, 1) for jitter, without a dependency: the clock's
/// nanoseconds through a mixer.
pub fn jitter_unit() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos() as u64;
    let mut x = nanos ^ 0x9E37_79B9_7F4A_7C15 ^ (std::process::id() as u64) << 32;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The `Baton.*` error in an error and its cause: the error itself, or, when the
/// cause is a failed step's description (`States.TaskFailed` of a `.sync:2` child:
/// `{"Error": …, "Cause": …, "Name": …}`), the step's own error, looked for down the
/// nested descriptions.
pub fn baton_error_in(error: Option<&str>, cause: Option<&str>) -> Option<String> {
    let mut error = error.map(str::to_string);
    let mut cause = cause.map(str::to_string);
    for _ in 0..8 {
        if let Some(e) = error.as_deref().filter(|e| e.starts_with("Baton.")) {
            return Some(e.to_string());
        }
        let child: Value = serde_json::from_str(cause.as_deref()?).ok()?;
        error = child["Error"].as_str().map(str::to_string);
        cause = child["Cause"].as_str().map(str::to_string);
    }
    None
}

/// The error `baton ls` shows for a failed execution: the `Baton.*` error of the
/// execution (or of the step its cause describes), else that of the newest failed
/// task in its history (`task_failures`: the TaskFailed events' error and cause,
/// oldest first), else the execution's error as it is.
pub fn step_error(
    error: Option<&str>,
    cause: Option<&str>,
    task_failures: &[(Option<String>, Option<String>)],
) -> Option<String> {
    baton_error_in(error, cause)
        .or_else(|| {
            task_failures
                .iter()
                .rev()
                .find_map(|(e, c)| baton_error_in(e.as_deref(), c.as_deref()))
        })
        .or_else(|| error.map(str::to_string))
}

/// The TaskFailed events' error and cause, oldest first: for [`step_error`].
pub fn task_failures(events: &[HistoryEvent]) -> Vec<(Option<String>, Option<String>)> {
    events
        .iter()
        .filter(|e| e.r#type() == &HistoryEventType::TaskFailed)
        .filter_map(|e| e.task_failed_event_details())
        .map(|d| (d.error().map(String::from), d.cause().map(String::from)))
        .collect()
}

/// What an execution started: its ECS tasks and its steps (nested executions).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Started {
    pub tasks: Vec<EcsTask>,
    pub executions: Vec<String>,
}

/// One ECS task an execution started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsTask {
    pub arn: String,
    /// The task definition it ran: from RunTask's answer, else from the state's
    /// parameters.
    pub task_definition: Option<String>,
    /// The task state that started it.
    pub state: Option<String>,
}

impl EcsTask {
    /// The task's id: the last part of its ARN.
    pub fn id(&self) -> &str {
        self.arn.rsplit('/').next().unwrap_or(&self.arn)
    }
}

/// The ECS tasks (TaskSubmitted of `ecs` resources, the task definition from its
/// RunTask answer or the TaskScheduled parameters) and the nested executions
/// (TaskSubmitted of `states` resources) in a history, in order.
pub fn started(events: &[HistoryEvent]) -> Started {
    let mut out = Started::default();
    let mut state: Option<String> = None;
    let mut scheduled_definition: Option<String> = None;
    for event in events {
        match event.r#type() {
            HistoryEventType::TaskStateEntered => {
                state = event.state_entered_event_details().map(|d| d.name().into());
            }
            HistoryEventType::TaskScheduled => {
                scheduled_definition = event
                    .task_scheduled_event_details()
                    .filter(|d| d.resource_type() == "ecs")
                    .and_then(|d| serde_json::from_str::<Value>(d.parameters()).ok())
                    .and_then(|p| p["TaskDefinition"].as_str().map(String::from));
            }
            HistoryEventType::TaskSubmitted => {
                let Some(d) = event.task_submitted_event_details() else {
                    continue;
                };
                let output: Value = d
                    .output()
                    .and_then(|o| serde_json::from_str(o).ok())
                    .unwrap_or_default();
                match d.resource_type() {
                    "ecs" => {
                        let task = &output["Tasks"][0];
                        if let Some(arn) = task["TaskArn"].as_str() {
                            out.tasks.push(EcsTask {
                                arn: arn.to_string(),
                                task_definition: task["TaskDefinitionArn"]
                                    .as_str()
                                    .map(String::from)
                                    .or_else(|| scheduled_definition.clone()),
                                state: state.clone(),
                            });
                        }
                    }
                    "states" => {
                        if let Some(arn) = output["ExecutionArn"].as_str() {
                            out.executions.push(arn.to_string());
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    out
}

/// The step (nested execution) whose end `event` records: a `states` task's
/// TaskSucceeded (its output), TaskFailed (its cause) or TaskTimedOut, the child's
/// description naming its `ExecutionArn`. Its last events are shown before this one.
pub fn step_ended(event: &HistoryEvent) -> Option<String> {
    let text = match event.r#type() {
        HistoryEventType::TaskSucceeded => event
            .task_succeeded_event_details()
            .filter(|d| d.resource_type() == "states")?
            .output()?,
        HistoryEventType::TaskFailed => event
            .task_failed_event_details()
            .filter(|d| d.resource_type() == "states")?
            .cause()?,
        HistoryEventType::TaskTimedOut => event
            .task_timed_out_event_details()
            .filter(|d| d.resource_type() == "states")?
            .cause()?,
        _ => return None,
    };
    let child: Value = serde_json::from_str(text).ok()?;
    child["ExecutionArn"].as_str().map(String::from)
}

/// An execution's ARN from what the user typed: an ARN as it is, else a name of an
/// execution of `state_machine` (`arn:…:stateMachine:<machine>` →
/// `arn:…:execution:<machine>:<name>`).
pub fn execution_arn(given: &str, state_machine: Option<&str>) -> Option<String> {
    if given.starts_with("arn:") {
        return Some(given.to_string());
    }
    let machine = state_machine?;
    let (head, name) = machine.split_once(":stateMachine:")?;
    Some(format!("{head}:execution:{name}:{given}"))
}

/// The CloudWatch Logs stream of a container of a task under the `awslogs` driver:
/// `<prefix>/<container name>/<task id>` (ECS developer guide, "Using the awslogs log
/// driver"); without a prefix, ECS names the stream by the task id alone.
pub fn log_stream(prefix: Option<&str>, container: &str, task_id: &str) -> String {
    match prefix.filter(|p| !p.is_empty()) {
        Some(prefix) => format!("{prefix}/{container}/{task_id}"),
        None => task_id.to_string(),
    }
}

/// An execution's duration in seconds, from its start and stop (epoch seconds), or
/// up to `now` while it runs.
pub fn duration(start: f64, stop: Option<f64>, now: f64) -> f64 {
    (stop.unwrap_or(now) - start).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{ecs_task_submitted, event, state_entered, step_failed, step_started};
    use aws_sdk_sfn::types::TaskScheduledEventDetails;

    fn ev(id: i64) -> HistoryEvent {
        event(HistoryEventType::PassStateEntered, id)
            .build()
            .unwrap()
    }

    fn ids(events: &[HistoryEvent]) -> Vec<i64> {
        events.iter().map(|e| e.id()).collect()
    }

    #[test]
    fn a_poll_reads_newest_first_and_stops_at_the_first_page_with_an_old_event() {
        let mut c = HistoryCursor::after(0);
        // First poll: 5 events, pages of 2, newest first: every page is read.
        assert!(c.take_page(&[ev(5), ev(4)], Some("t1")));
        assert!(c.take_page(&[ev(3), ev(2)], Some("t2")));
        assert!(!c.take_page(&[ev(1)], None));
        assert_eq!(ids(&c.finish()), vec![1, 2, 3, 4, 5]);
        // Nothing new: the first page holds old events, no further page is read.
        assert!(!c.take_page(&[ev(5), ev(4)], Some("t1")));
        assert!(c.finish().is_empty());
        // One new event: one page, its new event only.
        assert!(!c.take_page(&[ev(6), ev(5)], Some("t1")));
        assert_eq!(ids(&c.finish()), vec![6]);
        // Three new ones with pages of 2: two pages.
        assert!(c.take_page(&[ev(9), ev(8)], Some("t1")));
        assert!(!c.take_page(&[ev(7), ev(6)], Some("t2")));
        assert_eq!(ids(&c.finish()), vec![7, 8, 9]);
        assert_eq!(c.last_id(), 9);
    }

    #[test]
    fn an_endpoint_without_paging_gives_the_whole_history_each_time_and_only_new_events_pass() {
        let mut c = HistoryCursor::after(0);
        let all: Vec<_> = (1..=3).map(ev).collect();
        assert!(!c.take_page(&all, None));
        assert_eq!(ids(&c.finish()), vec![1, 2, 3]);
        let all: Vec<_> = (1..=4).map(ev).collect();
        assert!(!c.take_page(&all, None));
        assert_eq!(ids(&c.finish()), vec![4]);
        // A failed poll is read again whole.
        c.take_page(&[ev(6), ev(5)], Some("t"));
        c.abandon();
        assert!(c.finish().is_empty());
        assert_eq!(c.last_id(), 4);
        // A redrive is followed from where the history stood.
        let mut c = HistoryCursor::after(4);
        assert!(!c.take_page(&[ev(5), ev(4)], Some("t")));
        assert_eq!(ids(&c.finish()), vec![5]);
    }

    #[test]
    fn throttling_backs_off_exponentially_with_jitter_and_a_cap() {
        let base = Duration::from_millis(500);
        let cap = Duration::from_secs(20);
        assert_eq!(backoff(0, base, cap, 0.0), Duration::from_millis(250));
        assert_eq!(backoff(0, base, cap, 1.0), Duration::from_millis(500));
        assert_eq!(backoff(3, base, cap, 0.0), Duration::from_secs(2));
        assert_eq!(backoff(3, base, cap, 0.999).as_millis(), 3998);
        assert_eq!(backoff(30, base, cap, 1.0), cap);
        assert_eq!(backoff(u32::MAX, base, cap, 0.0), cap / 2);
        for _ in 0..100 {
            let u = jitter_unit();
            assert!((0.0..1.0).contains(&u), "{u}");
        }
        assert!(is_throttling(Some("ThrottlingException")));
        assert!(is_throttling(Some("TooManyRequestsException")));
        assert!(!is_throttling(Some("ExecutionDoesNotExist")));
        assert!(!is_throttling(None));
        let (b, c) = (Duration::from_millis(300), Duration::from_secs(2));
        assert_eq!(poll_pause(0, b, c), b);
        assert_eq!(poll_pause(1, b, c), Duration::from_millis(450));
        assert_eq!(poll_pause(100, b, c), c);
    }

    #[test]
    fn ls_shows_the_steps_own_baton_error() {
        // The execution's own error.
        assert_eq!(
            step_error(Some("Baton.OutOfMemory"), Some("x"), &[]).as_deref(),
            Some("Baton.OutOfMemory")
        );
        // States.TaskFailed whose cause is the child's description.
        let child = r#"{"Name":"c-1","Status":"FAILED","Error":"Baton.ContainerExited","Cause":"{\"exitCode\":3}"}"#;
        assert_eq!(
            step_error(Some("States.TaskFailed"), Some(child), &[]).as_deref(),
            Some("Baton.ContainerExited")
        );
        // Nested twice.
        let outer = serde_json::json!({"Error": "States.TaskFailed", "Cause": child}).to_string();
        assert_eq!(
            step_error(Some("States.TaskFailed"), Some(&outer), &[]).as_deref(),
            Some("Baton.ContainerExited")
        );
        // Not in the execution's error: the newest failed task's.
        let failures = vec![
            (Some("Baton.Interrupted".into()), None),
            (Some("States.TaskFailed".into()), Some(child.to_string())),
        ];
        assert_eq!(
            step_error(Some("Failed"), Some("see the step"), &failures).as_deref(),
            Some("Baton.ContainerExited")
        );
        // No Baton.* anywhere: the execution's error as it is.
        assert_eq!(
            step_error(Some("States.Runtime"), Some("not json"), &[]).as_deref(),
            Some("States.Runtime")
        );
        assert_eq!(step_error(None, None, &[]), None);
        let failed = step_failed(3, child);
        assert_eq!(
            step_error(None, None, &task_failures(&[ev(1), failed])).as_deref(),
            Some("Baton.ContainerExited")
        );
    }

    #[test]
    fn tasks_and_steps_are_found_in_a_history() {
        let events = vec![
            state_entered(1, "RunTask"),
            event(HistoryEventType::TaskScheduled, 2)
                .task_scheduled_event_details(
                    TaskScheduledEventDetails::builder()
                        .resource_type("ecs")
                        .resource("runTask.waitForTaskToken")
                        .region("us-east-1")
                        .parameters(r#"{"TaskDefinition":"fam:3","Cluster":"c"}"#)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
            ecs_task_submitted(3, "abc"),
            step_started(4),
        ];
        let found = started(&events);
        assert_eq!(
            found.tasks,
            vec![EcsTask {
                arn: "arn:aws:ecs:us-east-1:1:task/c/abc".into(),
                task_definition: Some("fam:3".into()),
                state: Some("RunTask".into()),
            }]
        );
        assert_eq!(found.tasks[0].id(), "abc");
        assert_eq!(
            found.executions,
            vec!["arn:aws:states:us-east-1:1:execution:task:c-1"]
        );
        let done = step_failed(5, r#"{"ExecutionArn":"arn:c-1","Error":"Baton.X"}"#);
        assert_eq!(step_ended(&done).as_deref(), Some("arn:c-1"));
        assert_eq!(step_ended(&events[3]), None);
    }

    #[test]
    fn names_arns_streams_and_durations() {
        let machine = "arn:aws:states:us-east-1:1:stateMachine:baton-pipeline";
        assert_eq!(
            execution_arn("run-1", Some(machine)).as_deref(),
            Some("arn:aws:states:us-east-1:1:execution:baton-pipeline:run-1")
        );
        assert_eq!(
            execution_arn("arn:aws:states:x", None).as_deref(),
            Some("arn:aws:states:x")
        );
        assert_eq!(execution_arn("run-1", None), None);
        assert_eq!(
            log_stream(Some("task1"), "worker", "abc"),
            "task1/worker/abc"
        );
        assert_eq!(log_stream(None, "worker", "abc"), "abc");
        assert_eq!(duration(10.0, Some(12.5), 99.0), 2.5);
        assert_eq!(duration(10.0, None, 11.0), 1.0);
    }
}

/// The execution this one is a step of: the ARN its input carries under
/// `AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID` (what Baton's pipelines pass their
/// steps), if any.
pub fn started_by(input: &str) -> Option<String> {
    let value: Value = serde_json::from_str(input).ok()?;
    let arn = value
        .get(baton::execution_event::STARTED_BY_KEY)?
        .as_str()?;
    arn.starts_with("arn:").then(|| arn.to_string())
}

#[cfg(test)]
mod started_by_tests {
    use super::started_by;

    #[test]
    fn a_step_names_its_pipeline() {
        let input = r#"{"step": "task1", "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": "arn:aws:states:us-east-1:1:execution:p:run-1"}"#;
        assert_eq!(
            started_by(input).as_deref(),
            Some("arn:aws:states:us-east-1:1:execution:p:run-1")
        );
        assert_eq!(started_by(r#"{"input": "s3://b/k"}"#), None);
        assert_eq!(started_by("not json"), None);
    }
}
