//! What the runner tells ECS and EventBridge about a task, in AWS's shapes.

use baton::ecs_event::{Container, DETAIL_TYPE, Overrides, SOURCE, TaskStateChange};

/// What the runner knows of a task from `DescribeTasks`.
#[derive(Debug, Clone, Default)]
pub struct TaskView {
    pub task_arn: String,
    pub cluster_arn: String,
    pub task_definition_arn: String,
    pub group: Option<String>,
    pub started_by: Option<String>,
    pub container_name: String,
    pub container_arn: Option<String>,
    pub overrides: Overrides,
    /// RunTask's `overrides.taskRoleArn`: the task's role instead of the definition's.
    pub task_role_override: Option<String>,
}

impl TaskView {
    pub fn from_sdk(task: &aws_sdk_ecs::types::Task) -> TaskView {
        let container = task.containers().first();
        let overrides = task.overrides().map(Overrides::from_sdk);
        TaskView {
            task_arn: task.task_arn().unwrap_or_default().into(),
            cluster_arn: task.cluster_arn().unwrap_or_default().into(),
            task_definition_arn: task.task_definition_arn().unwrap_or_default().into(),
            group: task.group().map(String::from),
            started_by: task.started_by().map(String::from),
            container_name: container.and_then(|c| c.name()).unwrap_or("worker").into(),
            container_arn: container.and_then(|c| c.container_arn()).map(String::from),
            overrides: overrides.unwrap_or_default(),
            task_role_override: task
                .overrides()
                .and_then(|o| o.task_role_arn())
                .filter(|r| !r.is_empty())
                .map(String::from),
        }
    }

    pub fn task_id(&self) -> &str {
        self.task_arn.rsplit('/').next().unwrap_or(&self.task_arn)
    }

    /// Environment overrides of the container, in order.
    pub fn override_env(&self, container: &str) -> Vec<(String, String)> {
        self.overrides
            .container_overrides
            .iter()
            .flatten()
            .filter(|o| o.name.as_deref() == Some(container))
            .flat_map(|o| o.environment.iter().flatten())
            .filter_map(|kv| Some((kv.name.clone()?, kv.value.clone().unwrap_or_default())))
            .collect()
    }
}

/// How a task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    pub stop_code: &'static str,
    pub stopped_reason: String,
    pub exit_code: Option<i64>,
    pub container_reason: Option<String>,
    pub stopped_at: String,
}

impl Stopped {
    /// A container that ran and ended: killed at its memory limit, stopped by
    /// StopTask, or exited by itself, as ECS reports each.
    pub fn exited(exit_code: Option<i64>, oom: bool, user_stop: bool) -> Stopped {
        let essential = (
            "EssentialContainerExited",
            "Essential container in task exited",
        );
        let (stop_code, stopped_reason) = if !oom && user_stop {
            ("UserInitiated", "Task stopped by user")
        } else {
            essential
        };
        Stopped {
            stop_code,
            stopped_reason: stopped_reason.into(),
            exit_code,
            container_reason: oom.then(|| OOM_REASON.to_string()),
            stopped_at: now_iso(),
        }
    }

    pub fn failed_to_start(reason: String, now: String) -> Stopped {
        Stopped {
            stop_code: "TaskFailedToStart",
            stopped_reason: reason.clone(),
            exit_code: None,
            container_reason: Some(reason),
            stopped_at: now,
        }
    }
}

pub const OOM_REASON: &str = "OutOfMemoryError: Container killed due to memory usage";

/// The "ECS Task State Change" detail for a RUNNING task.
pub fn running_detail(task: &TaskView) -> TaskStateChange {
    TaskStateChange {
        last_status: Some("RUNNING".into()),
        desired_status: Some("RUNNING".into()),
        stopped_at: None,
        containers: Some(vec![container(task, "RUNNING", None, None)]),
        ..base(task)
    }
}

/// The "ECS Task State Change" detail for a STOPPED task.
pub fn stopped_detail(task: &TaskView, stopped: &Stopped) -> TaskStateChange {
    TaskStateChange {
        last_status: Some("STOPPED".into()),
        desired_status: Some("STOPPED".into()),
        stop_code: Some(stopped.stop_code.into()),
        stopped_reason: Some(stopped.stopped_reason.clone()),
        stopped_at: Some(stopped.stopped_at.clone()),
        containers: Some(vec![container(
            task,
            "STOPPED",
            stopped.exit_code,
            stopped.container_reason.clone(),
        )]),
        ..base(task)
    }
}

fn base(task: &TaskView) -> TaskStateChange {
    TaskStateChange {
        task_arn: Some(task.task_arn.clone()),
        cluster_arn: Some(task.cluster_arn.clone()),
        task_definition_arn: Some(task.task_definition_arn.clone()),
        group: task.group.clone(),
        started_by: task.started_by.clone(),
        launch_type: Some("FARGATE".into()),
        overrides: Some(task.overrides.clone()),
        version: Some(1),
        ..Default::default()
    }
}

fn container(
    task: &TaskView,
    status: &str,
    exit_code: Option<i64>,
    reason: Option<String>,
) -> Container {
    Container {
        name: Some(task.container_name.clone()),
        exit_code,
        last_status: Some(status.into()),
        reason,
        container_arn: task.container_arn.clone(),
    }
}

/// The EventBridge entry AWS would put for this detail.
pub fn event_entry(
    task: &TaskView,
    detail: &TaskStateChange,
) -> aws_sdk_eventbridge::types::PutEventsRequestEntry {
    aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .source(SOURCE)
        .detail_type(DETAIL_TYPE)
        .resources(task.task_arn.clone())
        .detail(serde_json::to_string(detail).expect("a detail serialises"))
        .build()
}

/// An ISO-8601 timestamp, as events carry them.
pub fn iso(time: &aws_smithy_types::DateTime) -> String {
    time.fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

pub fn now_iso() -> String {
    iso(&aws_smithy_types::DateTime::from(
        std::time::SystemTime::now(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton::ecs_event::{ContainerOverride, KeyValue, Verdict, verdict};

    fn task() -> TaskView {
        TaskView {
            task_arn: "arn:aws:ecs:us-east-1:123456789012:task/baton/abc".into(),
            cluster_arn: "arn:aws:ecs:us-east-1:123456789012:cluster/baton".into(),
            task_definition_arn: "arn:aws:ecs:us-east-1:123456789012:task-definition/t1:1".into(),
            container_name: "worker".into(),
            overrides: Overrides {
                container_overrides: Some(vec![ContainerOverride {
                    name: Some("worker".into()),
                    environment: Some(vec![KeyValue {
                        name: Some("TASK_TOKEN".into()),
                        value: Some("tok".into()),
                    }]),
                }]),
            },
            ..Default::default()
        }
    }

    fn error_for(stopped: Stopped) -> &'static str {
        match verdict(&stopped_detail(&task(), &stopped), None) {
            Verdict::Fail { error, .. } => error,
            other => panic!("{other:?}"),
        }
    }

    fn ended(stop_code: &'static str, exit_code: Option<i64>, reason: Option<&str>) -> Stopped {
        Stopped {
            stop_code,
            stopped_reason: "Essential container in task exited".into(),
            exit_code,
            container_reason: reason.map(String::from),
            stopped_at: now_iso(),
        }
    }

    #[test]
    fn what_the_runner_reports_is_what_the_watchdog_reads() {
        assert_eq!(
            error_for(ended("EssentialContainerExited", Some(3), None)),
            "Baton.ContainerExited"
        );
        assert_eq!(
            error_for(ended("EssentialContainerExited", Some(0), None)),
            "Baton.NoCallback"
        );
        assert_eq!(
            error_for(ended(
                "EssentialContainerExited",
                Some(137),
                Some(OOM_REASON)
            )),
            "Baton.OutOfMemory"
        );
        assert_eq!(
            error_for(ended("UserInitiated", Some(137), None)),
            "Baton.TaskStopped"
        );
        assert_eq!(
            error_for(Stopped::failed_to_start(
                "CannotPullContainerError: x".into(),
                now_iso()
            )),
            "Baton.TaskFailedToStart"
        );
    }

    #[test]
    fn running_events_are_ignored_by_the_watchdog() {
        let detail = running_detail(&task());
        assert!(matches!(verdict(&detail, None), Verdict::NotStopped { .. }));
    }

    #[test]
    fn override_environment_of_the_container() {
        assert_eq!(
            task().override_env("worker"),
            vec![("TASK_TOKEN".to_string(), "tok".to_string())]
        );
        assert!(task().override_env("sidecar").is_empty());
    }

    #[test]
    fn timestamps_are_iso_8601() {
        let t = now_iso();
        assert!(t.ends_with('Z') && t.contains('T'), "{t}");
    }
}
