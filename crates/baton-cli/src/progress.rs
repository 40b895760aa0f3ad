//! Turns an execution's history into progress lines (pure: tested on its own).

use aws_sdk_sfn::types::{HistoryEvent, HistoryEventType};
use serde_json::Value;

use crate::term::{Glyphs, UNICODE};

/// Follows one execution's history, one event at a time.
pub struct Progress {
    started: Option<f64>,
    entered: std::collections::HashMap<String, f64>,
    /// The task state entered last, and the states whose task failed: a caught
    /// failure's state exits with ✗, not ✓.
    last_task: Option<String>,
    failed: std::collections::HashSet<String>,
    /// The Map state running now: its items, and how many are done, failed, running.
    map: Option<MapCount>,
    /// Where a task's logs are: `{task_id}` is replaced (`BATON_TASK_LOGS`).
    logs_template: Option<String>,
    /// Put after the time column: a nested execution's lines are indented.
    indent: String,
    /// ▶ ✓ ✗, or their ASCII stand-ins.
    glyphs: Glyphs,
}

impl Progress {
    pub fn new(logs_template: Option<String>) -> Progress {
        Progress {
            started: None,
            entered: Default::default(),
            last_task: None,
            failed: Default::default(),
            map: None,
            logs_template,
            indent: String::new(),
            glyphs: UNICODE,
        }
    }

    /// The same, with other marks ([`crate::term::ASCII`] where the terminal cannot
    /// show ▶ ✓ ✗); nested executions' progress keeps them.
    pub fn with_glyphs(mut self, glyphs: Glyphs) -> Progress {
        self.glyphs = glyphs;
        self
    }

    /// The progress of an execution this one started (a nested workflow): the same
    /// clock, its lines indented under this one's.
    pub fn nested(&self) -> Progress {
        Progress {
            started: self.started,
            entered: Default::default(),
            last_task: None,
            failed: Default::default(),
            map: None,
            logs_template: self.logs_template.clone(),
            indent: format!("{}    ", self.indent),
            glyphs: self.glyphs,
        }
    }

    /// The nested execution `event` starts, when its own lines are worth following:
    /// a step of a chain. Not a Map's items: the Map shows their count instead, and
    /// following hundreds of histories at once would meet GetExecutionHistory's
    /// throttle.
    pub fn nested_to_follow(&self, event: &HistoryEvent) -> Option<String> {
        if self
            .map
            .as_ref()
            .is_some_and(|m| m.running > 0 || m.done + m.failed < m.items)
        {
            return None;
        }
        let details = event
            .task_submitted_event_details()
            .filter(|d| d.resource_type() == "states")?;
        let output: Value = serde_json::from_str(details.output()?).ok()?;
        output["ExecutionArn"].as_str().map(String::from)
    }

    /// Whether `event` is the execution's last.
    pub fn ends(event: &HistoryEvent) -> bool {
        matches!(
            event.r#type(),
            HistoryEventType::ExecutionSucceeded
                | HistoryEventType::ExecutionFailed
                | HistoryEventType::ExecutionAborted
                | HistoryEventType::ExecutionTimedOut
        )
    }

    /// Lines to print for `event`.
    pub fn observe(&mut self, event: &HistoryEvent) -> Vec<String> {
        let mut lines = self.lines(event);
        if self.glyphs.ellipsis != UNICODE.ellipsis {
            // What was cut short, and a sha256's head (describe_output).
            for line in lines.iter_mut() {
                if line.contains(UNICODE.ellipsis) {
                    *line = line.replace(UNICODE.ellipsis, self.glyphs.ellipsis);
                }
            }
        }
        if self.indent.is_empty() {
            return lines;
        }
        lines
            .into_iter()
            .map(|line| match line.split_at_checked(8) {
                Some((time, rest)) => format!("{time}{}{rest}", self.indent),
                None => line,
            })
            .collect()
    }

    fn lines(&mut self, event: &HistoryEvent) -> Vec<String> {
        let t = event.timestamp().as_secs_f64();
        let start = *self.started.get_or_insert(t);
        let at = format!("{:>7.1}s", t - start);
        match event.r#type() {
            HistoryEventType::MapStateStarted => {
                let items = event
                    .map_state_started_event_details()
                    .map(|d| d.length())
                    .unwrap_or(0)
                    .max(0) as u32;
                self.map = Some(MapCount {
                    items,
                    ..Default::default()
                });
                vec![format!("{at}    {items} items")]
            }
            HistoryEventType::MapIterationStarted
            | HistoryEventType::MapIterationSucceeded
            | HistoryEventType::MapIterationFailed
            | HistoryEventType::MapIterationAborted => {
                let Some(map) = self.map.as_mut() else {
                    return vec![];
                };
                map.observe(event.r#type());
                vec![format!("{at}    items: {map}")]
            }
            HistoryEventType::TaskStateEntered
            | HistoryEventType::ChoiceStateEntered
            | HistoryEventType::MapStateEntered
            | HistoryEventType::WaitStateEntered => {
                let name = event
                    .state_entered_event_details()
                    .map(|d| d.name())
                    .unwrap_or("?")
                    .to_string();
                self.entered.insert(name.clone(), t);
                if event.r#type() == &HistoryEventType::TaskStateEntered {
                    self.failed.remove(&name);
                    self.last_task = Some(name.clone());
                }
                vec![format!("{at}  {} {name}", self.glyphs.enter)]
            }
            HistoryEventType::TaskStateExited | HistoryEventType::MapStateExited => {
                let name = event
                    .state_exited_event_details()
                    .map(|d| d.name())
                    .unwrap_or("?");
                let took = self.entered.get(name).map(|s| t - s).unwrap_or(0.0);
                let mark = if self.failed.remove(name) {
                    self.glyphs.fail
                } else {
                    self.glyphs.ok
                };
                vec![format!("{at}  {mark} {name} ({took:.1} s)")]
            }
            HistoryEventType::TaskSubmitted => {
                if let Some(nested) = event
                    .task_submitted_event_details()
                    .filter(|d| d.resource_type() == "states")
                {
                    let output: Value = nested
                        .output()
                        .and_then(|o| serde_json::from_str(o).ok())
                        .unwrap_or_default();
                    let arn = output["ExecutionArn"].as_str().unwrap_or("?");
                    let name = arn.rsplit(':').next().unwrap_or(arn);
                    return vec![format!("{at}    nested execution {name} started")];
                }
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
                // A retry succeeded after a failure: the state exits well.
                if let Some(state) = &self.last_task {
                    self.failed.remove(state);
                }
                if let Some(nested) = event
                    .task_succeeded_event_details()
                    .filter(|d| d.resource_type() == "states")
                {
                    let output: Value = nested
                        .output()
                        .and_then(|o| serde_json::from_str(o).ok())
                        .unwrap_or_default();
                    let name = output["Name"].as_str().unwrap_or("?");
                    let result = match &output["Output"] {
                        Value::String(text) => text.clone(),
                        Value::Null => "null".into(),
                        other => other.to_string(),
                    };
                    return vec![format!(
                        "{at}    nested execution {name} done: {}",
                        short(&describe_output_on_one_line(&result))
                    )];
                }
                let ecs = event
                    .task_succeeded_event_details()
                    .filter(|d| d.resource_type() == "ecs");
                let Some(details) = ecs else {
                    return vec![];
                };
                vec![format!(
                    "{at}    called back: {}",
                    short(&describe_output_on_one_line(
                        details.output().unwrap_or("null")
                    ))
                )]
            }
            HistoryEventType::TaskFailed => {
                self.failed.extend(self.last_task.clone());
                let d = event.task_failed_event_details();
                let error = d.and_then(|d| d.error()).unwrap_or("?");
                let cause = d.and_then(|d| d.cause()).unwrap_or("");
                // A nested execution failed: the cause is its description, and its
                // own error is the one that matters (a chain shows its lines above).
                let child: Value = serde_json::from_str(cause).unwrap_or_default();
                if let (Some("states"), Some(child_error)) =
                    (d.map(|d| d.resource_type()), child["Error"].as_str())
                {
                    let name = child["Name"].as_str().unwrap_or("?");
                    let status = child["Status"].as_str().unwrap_or("FAILED");
                    return vec![
                        format!(
                            "{at}  {} {child_error} (nested execution {name} {status})",
                            self.glyphs.fail
                        ),
                        format!(
                            "           cause: {}",
                            short(child["Cause"].as_str().unwrap_or(""))
                        ),
                    ];
                }
                vec![
                    format!("{at}  {} {error}", self.glyphs.fail),
                    format!("           cause: {}", short(cause)),
                ]
            }
            HistoryEventType::TaskTimedOut => {
                self.failed.extend(self.last_task.clone());
                let error = event
                    .task_timed_out_event_details()
                    .and_then(|d| d.error())
                    .unwrap_or("States.Timeout");
                vec![format!("{at}  {} {error}", self.glyphs.fail)]
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

/// A Map state's items: how many there are, and how many are done, failed, running.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MapCount {
    pub items: u32,
    pub done: u32,
    pub failed: u32,
    pub running: u32,
}

impl MapCount {
    fn observe(&mut self, kind: &HistoryEventType) {
        match kind {
            HistoryEventType::MapIterationStarted => self.running += 1,
            HistoryEventType::MapIterationSucceeded => {
                self.running = self.running.saturating_sub(1);
                self.done += 1;
            }
            HistoryEventType::MapIterationFailed | HistoryEventType::MapIterationAborted => {
                self.running = self.running.saturating_sub(1);
                self.failed += 1;
            }
            _ => {}
        }
    }
}

impl std::fmt::Display for MapCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} done, {} failed, {} running, of {}",
            self.done, self.failed, self.running, self.items
        )
    }
}

/// [`describe_output`] with inline data as compact JSON: for progress lines.
pub fn describe_output_on_one_line(output: &str) -> String {
    match baton::Payload::parse(output) {
        Ok(baton::Payload::Inline(v)) => format!("inline: {v}"),
        _ => describe_output(output),
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
    use crate::fixtures::{
        ecs_task_submitted, event, state_entered, state_exited, step_failed, step_started,
        task_failed,
    };
    use aws_sdk_sfn::types::{TaskSubmittedEventDetails, TaskSucceededEventDetails};

    #[test]
    fn states_tasks_and_failures_become_lines() {
        let mut p = Progress::new(Some(".local/logs/{task_id}.log".into()));
        let entered = state_entered(0, "RunTask1");
        assert_eq!(p.observe(&entered), vec!["    0.0s  ▶ RunTask1"]);
        let submitted = ecs_task_submitted(1, "abc123");
        assert_eq!(
            p.observe(&submitted),
            vec!["    1.0s    ECS task abc123 started; logs: .local/logs/abc123.log"]
        );
        let failed = task_failed(
            3,
            "ecs",
            "runTask",
            "Baton.OutOfMemory",
            "{\"exitCode\":137}",
        );
        assert_eq!(p.observe(&failed)[0], "    3.0s  ✗ Baton.OutOfMemory");
        let exited = state_exited(4, "RunTask1");
        // Its failure caught (a Catch): the state exits failed.
        assert_eq!(p.observe(&exited), vec!["    4.0s  ✗ RunTask1 (4.0 s)"]);
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
    fn a_chains_steps_are_followed_indented_and_a_maps_items_are_not() {
        let mut p = Progress::new(Some("logs/{task_id}.log".into()));
        p.observe(
            &event(HistoryEventType::ExecutionStarted, 10)
                .build()
                .unwrap(),
        );
        let child = p.nested_to_follow(&step_started(11));
        assert_eq!(
            child.as_deref(),
            Some("arn:aws:states:us-east-1:1:execution:task:c-1")
        );
        let mut step = p.nested();
        let ecs = ecs_task_submitted(12, "t1");
        // The root's clock, the step's lines under the root's.
        assert_eq!(
            step.observe(&ecs),
            vec!["    2.0s        ECS task t1 started; logs: logs/t1.log"]
        );
        assert_eq!(step.nested().indent, " ".repeat(8));
        assert!(Progress::ends(
            &event(HistoryEventType::ExecutionFailed, 13)
                .build()
                .unwrap()
        ));
        assert!(!Progress::ends(&ecs));

        use aws_sdk_sfn::types::MapStateStartedEventDetails;
        let mut fan_out = Progress::new(None);
        fan_out.observe(
            &event(HistoryEventType::MapStateStarted, 0)
                .map_state_started_event_details(
                    MapStateStartedEventDetails::builder().length(1).build(),
                )
                .build()
                .unwrap(),
        );
        fan_out.observe(
            &event(HistoryEventType::MapIterationStarted, 1)
                .build()
                .unwrap(),
        );
        assert_eq!(fan_out.nested_to_follow(&step_started(1)), None);
        fan_out.observe(
            &event(HistoryEventType::MapIterationSucceeded, 2)
                .build()
                .unwrap(),
        );
        assert!(
            fan_out.nested_to_follow(&step_started(3)).is_some(),
            "a step after the Map"
        );
    }

    #[test]
    fn nested_executions_and_map_progress_become_lines() {
        use aws_sdk_sfn::types::MapStateStartedEventDetails;
        let mut p = Progress::new(None);
        let started = event(HistoryEventType::MapStateStarted, 0)
            .map_state_started_event_details(
                MapStateStartedEventDetails::builder().length(3).build(),
            )
            .build()
            .unwrap();
        assert_eq!(p.observe(&started), vec!["    0.0s    3 items"]);
        let iteration = |kind, secs| event(kind, secs).build().unwrap();
        p.observe(&iteration(HistoryEventType::MapIterationStarted, 1));
        p.observe(&iteration(HistoryEventType::MapIterationStarted, 1));
        assert_eq!(
            p.observe(&iteration(HistoryEventType::MapIterationSucceeded, 2)),
            vec!["    2.0s    items: 1 done, 0 failed, 1 running, of 3"]
        );
        assert_eq!(
            p.observe(&iteration(HistoryEventType::MapIterationFailed, 3)),
            vec!["    3.0s    items: 1 done, 1 failed, 0 running, of 3"]
        );
        assert_eq!(
            p.observe(&step_started(4)),
            vec!["    4.0s    nested execution c-1 started"]
        );
        let done = event(HistoryEventType::TaskSucceeded, 5)
            .task_succeeded_event_details(
                TaskSucceededEventDetails::builder()
                    .resource_type("states")
                    .resource("startExecution.sync:2")
                    .output(r#"{"Name":"c-1","Output":{"inline":"ok"},"Status":"SUCCEEDED"}"#)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let line = p.observe(&done);
        assert!(
            line[0].starts_with("    5.0s    nested execution c-1 done: inline:"),
            "{line:?}"
        );
    }

    #[test]
    fn a_caught_failure_exits_its_state_with_a_cross_and_a_steps_own_error_is_shown() {
        let mut p = Progress::new(None);
        let entered = state_entered(0, "Task1");
        let exited = |secs| state_exited(secs, "Task1");
        p.observe(&entered);
        let child = r#"{"Name":"c-1","Status":"FAILED","Error":"Baton.ContainerExited","Cause":"{\"stopCode\":\"EssentialContainerExited\"}"}"#;
        let failed = step_failed(2, child);
        assert_eq!(
            p.observe(&failed),
            vec![
                "    2.0s  ✗ Baton.ContainerExited (nested execution c-1 FAILED)",
                r#"           cause: {"stopCode":"EssentialContainerExited"}"#
            ]
        );
        assert_eq!(p.observe(&exited(2)), vec!["    2.0s  ✗ Task1 (2.0 s)"]);
        // Failed, retried, and then succeeded: ✓.
        p.observe(&entered);
        p.observe(&failed);
        p.observe(&event(HistoryEventType::TaskSucceeded, 3).build().unwrap());
        assert_eq!(p.observe(&exited(3)), vec!["    3.0s  ✓ Task1 (3.0 s)"]);
    }

    #[test]
    fn ascii_marks_where_the_terminal_cannot_show_them() {
        let mut p = Progress::new(None).with_glyphs(crate::term::ASCII);
        let entered = state_entered(0, "Task1");
        assert_eq!(p.observe(&entered), vec!["    0.0s  > Task1"]);
        let failed = task_failed(1, "ecs", "runTask", "Baton.OutOfMemory", &"c".repeat(500));
        let lines = p.observe(&failed);
        assert_eq!(lines[0], "    1.0s  x Baton.OutOfMemory");
        assert!(lines[1].ends_with("c..."), "{}", lines[1]);
        let exited = state_exited(2, "Task1");
        assert_eq!(p.observe(&exited), vec!["    2.0s  x Task1 (2.0 s)"]);
        // A step's progress keeps them.
        let mut step = p.nested();
        assert_eq!(step.observe(&entered), vec!["    0.0s      > Task1"]);
        step.observe(&event(HistoryEventType::TaskSucceeded, 3).build().unwrap());
        assert_eq!(
            step.observe(&exited),
            vec!["    2.0s      ok Task1 (2.0 s)"]
        );
        for line in p
            .observe(&failed)
            .iter()
            .chain(step.observe(&exited).iter())
        {
            assert!(line.is_ascii(), "{line}");
        }
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
