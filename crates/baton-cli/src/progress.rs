//! Turns an execution's history into progress lines (pure: tested on its own).

use aws_sdk_sfn::types::{HistoryEvent, HistoryEventType};
use serde_json::Value;

/// Follows one execution's history, one event at a time.
pub struct Progress {
    started: Option<f64>,
    entered: std::collections::HashMap<String, f64>,
    /// Where a task's logs are: `{task_id}` is replaced (`BATON_TASK_LOGS`).
    logs_template: Option<String>,
}

impl Progress {
    pub fn new(logs_template: Option<String>) -> Progress {
        Progress {
            started: None,
            entered: Default::default(),
            logs_template,
        }
    }

    /// Lines to print for `event`.
    pub fn observe(&mut self, event: &HistoryEvent) -> Vec<String> {
        let t = event.timestamp().as_secs_f64();
        let start = *self.started.get_or_insert(t);
        let at = format!("{:>7.1}s", t - start);
        match event.r#type() {
            HistoryEventType::TaskStateEntered
            | HistoryEventType::ChoiceStateEntered
            | HistoryEventType::WaitStateEntered => {
                let name = event
                    .state_entered_event_details()
                    .map(|d| d.name())
                    .unwrap_or("?")
                    .to_string();
                self.entered.insert(name.clone(), t);
                vec![format!("{at}  ▶ {name}")]
            }
            HistoryEventType::TaskStateExited => {
                let name = event
                    .state_exited_event_details()
                    .map(|d| d.name())
                    .unwrap_or("?");
                let took = self.entered.get(name).map(|s| t - s).unwrap_or(0.0);
                vec![format!("{at}  ✓ {name} ({took:.1} s)")]
            }
            HistoryEventType::TaskSubmitted => {
                let ecs = event
                    .task_submitted_event_details()
                    .filter(|d| d.resource_type() == "ecs");
                let Some(details) = ecs else {
                    return vec![];
                };
                let output: Value = details
                    .output()
                    .and_then(|o| serde_json::from_str(o).ok())
                    .unwrap_or_default();
                let arn = output["Tasks"][0]["TaskArn"].as_str().unwrap_or("");
                let id = arn.rsplit('/').next().unwrap_or(arn);
                let logs = self
                    .logs_template
                    .as_ref()
                    .map(|t| format!("; logs: {}", t.replace("{task_id}", id)))
                    .unwrap_or_default();
                vec![format!("{at}    ECS task {id} started{logs}")]
            }
            HistoryEventType::TaskSucceeded => {
                let ecs = event
                    .task_succeeded_event_details()
                    .filter(|d| d.resource_type() == "ecs");
                let Some(details) = ecs else {
                    return vec![];
                };
                vec![format!(
                    "{at}    called back: {}",
                    describe_output(details.output().unwrap_or("null"))
                )]
            }
            HistoryEventType::TaskFailed => {
                let d = event.task_failed_event_details();
                let error = d.and_then(|d| d.error()).unwrap_or("?");
                let cause = d.and_then(|d| d.cause()).unwrap_or("");
                vec![
                    format!("{at}  ✗ {error}"),
                    format!("           cause: {}", short(cause)),
                ]
            }
            HistoryEventType::TaskTimedOut => {
                let error = event
                    .task_timed_out_event_details()
                    .and_then(|d| d.error())
                    .unwrap_or("States.Timeout");
                vec![format!("{at}  ✗ {error}")]
            }
            _ => vec![],
        }
    }
}

fn short(text: &str) -> String {
    let cut = baton::limits::truncate_chars(text, 400);
    if cut.len() < text.len() {
        format!("{cut}…")
    } else {
        cut.to_string()
    }
}

/// A human line for an execution's output Payload.
pub fn describe_output(output: &str) -> String {
    match baton::Payload::parse(output) {
        Ok(baton::Payload::S3(p)) => format!(
            "{} ({} bytes{})",
            p.uri(),
            p.size,
            p.sha256
                .map(|s| format!(", sha256 {}…", &s[..12]))
                .unwrap_or_default()
        ),
        Ok(baton::Payload::Inline(v)) => format!(
            "inline: {}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        ),
        Ok(baton::Payload::Manifest(entries)) => format!(
            "manifest of {} entries ({} bytes)",
            entries.len(),
            entries.iter().map(baton::store::payload_size).sum::<u64>()
        ),
        Err(_) => output.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sfn::types::{
        StateEnteredEventDetails, StateExitedEventDetails, TaskFailedEventDetails,
        TaskSubmittedEventDetails, TaskSucceededEventDetails,
    };
    use aws_smithy_types::DateTime;

    fn event(
        kind: HistoryEventType,
        secs: i64,
    ) -> aws_sdk_sfn::types::builders::HistoryEventBuilder {
        HistoryEvent::builder()
            .r#type(kind)
            .id(secs)
            .timestamp(DateTime::from_secs(1_700_000_000 + secs))
    }

    #[test]
    fn states_tasks_and_failures_become_lines() {
        let mut p = Progress::new(Some(".local/logs/{task_id}.log".into()));
        let entered = event(HistoryEventType::TaskStateEntered, 0)
            .state_entered_event_details(
                StateEnteredEventDetails::builder()
                    .name("RunTask1")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        assert_eq!(p.observe(&entered), vec!["    0.0s  ▶ RunTask1"]);
        let submitted = event(HistoryEventType::TaskSubmitted, 1)
            .task_submitted_event_details(
                TaskSubmittedEventDetails::builder()
                    .resource_type("ecs")
                    .resource("runTask.waitForTaskToken")
                    .output(r#"{"Tasks":[{"TaskArn":"arn:aws:ecs:us-east-1:1:task/c/abc123"}]}"#)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        assert_eq!(
            p.observe(&submitted),
            vec!["    1.0s    ECS task abc123 started; logs: .local/logs/abc123.log"]
        );
        let failed = event(HistoryEventType::TaskFailed, 3)
            .task_failed_event_details(
                TaskFailedEventDetails::builder()
                    .resource_type("ecs")
                    .resource("runTask")
                    .error("Baton.OutOfMemory")
                    .cause("{\"exitCode\":137}")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        assert_eq!(p.observe(&failed)[0], "    3.0s  ✗ Baton.OutOfMemory");
        let exited = event(HistoryEventType::TaskStateExited, 4)
            .state_exited_event_details(
                StateExitedEventDetails::builder()
                    .name("RunTask1")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        assert_eq!(p.observe(&exited), vec!["    4.0s  ✓ RunTask1 (4.0 s)"]);
    }

    #[test]
    fn only_ecs_tasks_print_start_and_callback_lines() {
        let mut p = Progress::new(None);
        let submitted = |resource_type: &str| {
            event(HistoryEventType::TaskSubmitted, 1)
                .task_submitted_event_details(
                    TaskSubmittedEventDetails::builder()
                        .resource_type(resource_type)
                        .resource("invoke")
                        .output(r#"{"Tasks":[{"TaskArn":"arn:aws:ecs:us-east-1:1:task/c/t1"}]}"#)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap()
        };
        let succeeded = |resource_type: &str| {
            event(HistoryEventType::TaskSucceeded, 2)
                .task_succeeded_event_details(
                    TaskSucceededEventDetails::builder()
                        .resource_type(resource_type)
                        .resource("invoke")
                        .output(r#"{"inline":{"n":1}}"#)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap()
        };
        assert!(p.observe(&submitted("lambda")).is_empty());
        assert!(p.observe(&succeeded("lambda")).is_empty());
        assert_eq!(
            p.observe(&submitted("ecs")),
            vec!["    0.0s    ECS task t1 started"]
        );
        let line = p.observe(&succeeded("ecs"));
        assert_eq!(line.len(), 1);
        assert!(line[0].starts_with("    1.0s    called back: "), "{line:?}");
    }

    #[test]
    fn outputs_are_described() {
        assert!(describe_output(r#"{"inline":{"a":1}}"#).starts_with("inline:"));
        let s3 = describe_output(&format!(
            r#"{{"s3":{{"bucket":"b","key":"k","size":5,"sha256":"{}"}}}}"#,
            "a".repeat(64)
        ));
        assert_eq!(s3, "s3://b/k (5 bytes, sha256 aaaaaaaaaaaa…)");
    }
}
