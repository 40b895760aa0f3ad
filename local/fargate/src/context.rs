//! What a task shares however it runs (a process, `task`; a container,
//! `container`): the runner's [`Context`], the task's [`Definition`], its log file
//! and its events to EventBridge.

use std::path::PathBuf;
use std::time::Duration;

use tracing::warn;

use crate::report::{Stopped, TaskView, event_entry, now_iso};

/// What every task shares.
pub struct Context {
    pub ecs: aws_sdk_ecs::Client,
    pub events: aws_sdk_eventbridge::Client,
    /// The runner's STS: AssumeRole of each task's role.
    pub sts: aws_sdk_sts::Client,
    /// Sessions of the task roles, by role ARN.
    pub sessions: crate::credentials::RoleSessions,
    pub worker: PathBuf,
    pub root: PathBuf,
    pub logs: PathBuf,
    /// The runner's environment a task's is made from ([`crate::credentials::task_env`]):
    /// the local endpoint and region; its credentials are never passed on.
    pub base_env: Vec<(String, String)>,
    /// Process groups of the tasks running now, to end them with the runner.
    pub groups: std::sync::Mutex<std::collections::HashSet<i32>>,
    /// Time between RunTask and the container's start (ENI, image pull on Fargate).
    pub start_delay: Duration,
    /// Run images as real containers (podman); `None`: every task is a process.
    pub containers: Option<Containers>,
    /// podman's environment (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF, PATH).
    pub podman_env: Vec<(String, String)>,
    /// Names of the containers running now, to remove them with the runner.
    pub containers_running: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// The container backend's settings.
#[derive(Debug, Clone)]
pub struct Containers {
    /// The image that stands in for any `…/baton-worker[:tag]` (`make image`).
    pub worker_image: String,
}

/// The parts of the task definition a local run needs.
#[derive(Debug, Clone)]
pub struct Definition {
    pub image: String,
    pub command: Vec<String>,
    pub environment: Vec<(String, String)>,
    /// Hard memory limit in bytes (container `memory`, else the task's).
    pub memory_bytes: Option<u64>,
    pub stop_timeout: Duration,
    pub readonly_root: bool,
    pub user: Option<String>,
    pub entry_point: Vec<String>,
    /// The task role (`taskRoleArn`): its session's credentials are the task's.
    pub task_role_arn: Option<String>,
    /// `linuxParameters.initProcessEnabled`: an init process as the container's PID 1
    /// that forwards signals and reaps orphaned processes (`--init`).
    pub init_process: bool,
}

impl Definition {
    pub fn from_sdk(def: &aws_sdk_ecs::types::TaskDefinition) -> Definition {
        let container = def
            .container_definitions()
            .iter()
            .find(|c| c.essential().unwrap_or(true))
            .or_else(|| def.container_definitions().first());
        let container_mib = container.and_then(|c| c.memory()).map(|m| m as u64);
        let task_mib = def.memory().and_then(|m| m.parse::<u64>().ok());
        Definition {
            image: container.and_then(|c| c.image()).unwrap_or_default().into(),
            command: container.map(|c| c.command().to_vec()).unwrap_or_default(),
            environment: container
                .map(|c| {
                    c.environment()
                        .iter()
                        .filter_map(|kv| {
                            Some((
                                kv.name()?.to_string(),
                                kv.value().unwrap_or_default().to_string(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            memory_bytes: container_mib.or(task_mib).map(|mib| mib * 1024 * 1024),
            stop_timeout: Duration::from_secs(
                container.and_then(|c| c.stop_timeout()).unwrap_or(30) as u64,
            ),
            readonly_root: container
                .and_then(|c| c.readonly_root_filesystem())
                .unwrap_or(false),
            user: container.and_then(|c| c.user()).map(String::from),
            entry_point: container
                .map(|c| c.entry_point().to_vec())
                .unwrap_or_default(),
            task_role_arn: def
                .task_role_arn()
                .filter(|r| !r.is_empty())
                .map(String::from),
            init_process: container
                .and_then(|c| c.linux_parameters())
                .and_then(|l| l.init_process_enabled())
                .unwrap_or(false),
        }
    }
}

/// The task's log file (`<logs>/<task id>.log`), or the failure to start that ECS
/// would report when it cannot be made.
pub fn task_log(ctx: &Context, task: &TaskView) -> Result<(PathBuf, std::fs::File), Stopped> {
    let path = ctx.logs.join(format!("{}.log", task.task_id()));
    match std::fs::File::create(&path) {
        Ok(file) => Ok((path, file)),
        Err(e) => Err(Stopped::failed_to_start(
            format!(
                "CannotStartContainerError: log file {}: {e}",
                path.display()
            ),
            now_iso(),
        )),
    }
}

pub async fn put_event(ctx: &Context, task: &TaskView, detail: &baton::ecs_event::TaskStateChange) {
    let put = ctx
        .events
        .put_events()
        .entries(event_entry(task, detail))
        .send()
        .await;
    match put {
        Ok(out) if out.failed_entry_count() == 0 => {}
        Ok(out) => {
            warn!(task_arn = %task.task_arn, failed = ?out.entries(), "PutEvents refused the event")
        }
        Err(e) => {
            warn!(task_arn = %task.task_arn, error = %baton::error::display_chain(&e), "PutEvents failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::{ContainerDefinition, Task, TaskDefinition, TaskOverride};

    #[test]
    fn the_init_process_comes_from_the_containers_linux_parameters() {
        use aws_sdk_ecs::types::LinuxParameters;
        let with = |params: Option<LinuxParameters>| {
            let container = ContainerDefinition::builder()
                .image("baton-worker")
                .set_linux_parameters(params)
                .build();
            Definition::from_sdk(
                &TaskDefinition::builder()
                    .container_definitions(container)
                    .build(),
            )
            .init_process
        };
        assert!(with(Some(
            LinuxParameters::builder()
                .init_process_enabled(true)
                .build()
        )));
        assert!(!with(Some(
            LinuxParameters::builder()
                .init_process_enabled(false)
                .build()
        )));
        assert!(!with(Some(LinuxParameters::builder().build())));
        assert!(!with(None));
    }

    #[test]
    fn the_task_role_comes_from_the_definition_or_runtasks_overrides() {
        let container = ContainerDefinition::builder().image("local:true").build();
        let with_role = TaskDefinition::builder()
            .task_role_arn("arn:aws:iam::123456789012:role/job")
            .container_definitions(container.clone())
            .build();
        assert_eq!(
            Definition::from_sdk(&with_role).task_role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/job")
        );
        let without = TaskDefinition::builder()
            .container_definitions(container)
            .build();
        assert_eq!(Definition::from_sdk(&without).task_role_arn, None);

        let overridden = Task::builder()
            .overrides(
                TaskOverride::builder()
                    .task_role_arn("arn:aws:iam::123456789012:role/other")
                    .build(),
            )
            .build();
        assert_eq!(
            TaskView::from_sdk(&overridden)
                .task_role_override
                .as_deref(),
            Some("arn:aws:iam::123456789012:role/other")
        );
        assert_eq!(
            TaskView::from_sdk(&Task::builder().build()).task_role_override,
            None
        );
    }
}
