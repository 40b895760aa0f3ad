//! One ECS task as a local process: start, watch memory, honour StopTask, report.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::context::{Context, Definition, put_event};
use crate::image::{Launch, launch_for};
use crate::processes;
use crate::report::{Stopped, TaskView, now_iso, running_detail, stopped_detail};

/// Container environment variable that sets one task's start-up delay, in
/// milliseconds, over the runner's default (for tests of the heartbeat window).
pub const START_DELAY_VARIABLE: &str = "BATON_LOCAL_START_DELAY_MS";

/// Container environment variable: a fault the runner causes in the task (the fault
/// soak). `kill@<marker>`: SIGKILL the task's processes when a line of its log holds
/// `<marker>`, as a crash would; `oom@<marker>`: the same, reported as the OOM killer
/// is (`OutOfMemoryError`); `freeze@<marker>`: SIGSTOP them, as a deadlocked or wedged
/// container looks from outside (alive, silent: no heartbeat, no callback, no exit;
/// only StopTask's SIGKILL after `stopTimeout` ends it). Process tasks only.
pub const FAULT_VARIABLE: &str = "BATON_LOCAL_FAULT";

/// Container environment variable: what happens to the task's STOPPED event on its
/// way to EventBridge: `drop`, `duplicate`, `delay:<ms>`, or `reorder` (a stale
/// RUNNING event follows the STOPPED one).
pub const EVENT_FAULT_VARIABLE: &str = "BATON_LOCAL_EVENT_FAULT";

/// A crash the runner causes (see [`FAULT_VARIABLE`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crash {
    pub marker: String,
    pub oom: bool,
    /// SIGSTOP instead of SIGKILL (`freeze@`).
    pub freeze: bool,
}

/// What happens to a STOPPED event (see [`EVENT_FAULT_VARIABLE`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventFault {
    Drop,
    Duplicate,
    Delay(Duration),
    Reorder,
}

fn variable<'a>(environment: &'a [(String, String)], name: &str) -> Option<&'a str> {
    environment
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The task's [`Crash`], if its environment asks for one; an unreadable value is an
/// error, so a typo in a soak never passes as "no fault".
pub fn crash(environment: &[(String, String)]) -> Result<Option<Crash>, String> {
    let Some(value) = variable(environment, FAULT_VARIABLE) else {
        return Ok(None);
    };
    let (kind, marker) = value.split_once('@').ok_or_else(|| {
        format!("{FAULT_VARIABLE}={value:?}: expected kill@, oom@ or freeze@<marker>")
    })?;
    if marker.is_empty() || !matches!(kind, "kill" | "oom" | "freeze") {
        return Err(format!(
            "{FAULT_VARIABLE}={value:?}: expected kill@, oom@ or freeze@<marker>"
        ));
    }
    Ok(Some(Crash {
        marker: marker.into(),
        oom: kind == "oom",
        freeze: kind == "freeze",
    }))
}

/// The task's [`EventFault`], if its environment asks for one.
pub fn event_fault(environment: &[(String, String)]) -> Result<Option<EventFault>, String> {
    let Some(value) = variable(environment, EVENT_FAULT_VARIABLE) else {
        return Ok(None);
    };
    let bad = || {
        format!("{EVENT_FAULT_VARIABLE}={value:?}: expected drop, duplicate, delay:<ms> or reorder")
    };
    Ok(Some(match value {
        "drop" => EventFault::Drop,
        "duplicate" => EventFault::Duplicate,
        "reorder" => EventFault::Reorder,
        _ => EventFault::Delay(Duration::from_millis(
            value
                .strip_prefix("delay:")
                .and_then(|ms| ms.parse().ok())
                .ok_or_else(bad)?,
        )),
    }))
}

/// Finds a marker in a log that grows: fed what was appended since the last call.
#[derive(Debug, Default)]
pub struct MarkerWatch {
    carry: Vec<u8>,
}

impl MarkerWatch {
    /// True once `marker` has appeared in everything fed so far.
    pub fn feed(&mut self, marker: &str, appended: &[u8]) -> bool {
        self.carry.extend_from_slice(appended);
        let needle = marker.as_bytes();
        if self.carry.windows(needle.len()).any(|w| w == needle) {
            return true;
        }
        let keep = needle.len().saturating_sub(1).min(self.carry.len());
        self.carry.drain(..self.carry.len() - keep);
        false
    }
}

impl Context {
    /// The runner is stopping: kill every task it runs.
    pub fn kill_all(&self) {
        for pgid in self.groups.lock().expect("groups lock").iter() {
            processes::signal_task(*pgid, libc::SIGKILL);
        }
        let names: Vec<String> = self
            .containers_running
            .lock()
            .expect("containers lock")
            .iter()
            .cloned()
            .collect();
        crate::container::remove_all(&self.podman_env, &names);
    }
}

/// Run one task to its end and report it STOPPED. `stop` turns true on StopTask.
pub async fn run(ctx: Arc<Context>, task: TaskView, def: Definition, stop: watch::Receiver<bool>) {
    let mut stopped = supervise(&ctx, &task, &def, stop).await;
    if stopped.stop_code == "UserInitiated" {
        // ECS shows StopTask's reason as the task's stoppedReason (StopTask API
        // reference); the default only when none was given.
        if let Some(reason) = stop_reason(&ctx, &task).await {
            stopped.stopped_reason = reason;
        }
    }
    info!(task_arn = %task.task_arn, stop_code = stopped.stop_code, exit_code = stopped.exit_code, reason = %stopped.stopped_reason, "task stopped");
    let fault = event_fault(&def.environment).unwrap_or_else(|e| {
        warn!(task_arn = %task.task_arn, error = e, "ignoring the event fault");
        None
    });
    report_stopped(&ctx, &task, &stopped, fault).await;
}

/// A task StopTask stopped before this runner started it (RunTask and StopTask came
/// between two of its listings, as happens with 1,000 tasks starting at once): ECS
/// stops a task that has not started yet, as it stops one still PROVISIONING or
/// PENDING ("Amazon ECS task lifecycle"), with StopTask's reason; report it so.
pub async fn stopped_before_start(ctx: &Context, task: &TaskView) {
    let stopped = Stopped {
        stop_code: "UserInitiated",
        stopped_reason: stop_reason(ctx, task)
            .await
            .unwrap_or_else(|| "Task stopped by user".into()),
        exit_code: None,
        container_reason: None,
        stopped_at: now_iso(),
    };
    info!(task_arn = %task.task_arn, reason = %stopped.stopped_reason, "task stopped before it started");
    report_stopped(ctx, task, &stopped, None).await;
}

/// The reason StopTask was given, as ECS keeps it (DescribeTasks' stoppedReason).
async fn stop_reason(ctx: &Context, task: &TaskView) -> Option<String> {
    let described = ctx
        .ecs
        .describe_tasks()
        .cluster(&task.cluster_arn)
        .tasks(&task.task_arn)
        .send()
        .await
        .ok()?;
    described
        .tasks()
        .first()?
        .stopped_reason()
        .filter(|r| !r.is_empty())
        .map(String::from)
}

async fn supervise(
    ctx: &Context,
    task: &TaskView,
    def: &Definition,
    mut stop: watch::Receiver<bool>,
) -> Stopped {
    // In containers, any image in local storage runs (crate::container::local_image
    // decides); as processes, only the worker image and `local:` programs do.
    let in_container = ctx.containers.is_some() && !def.image.starts_with("local:");
    let launch = launch_for(&def.image, &def.command, &ctx.worker, &ctx.root);
    if let Launch::CannotPull { reason } = &launch
        && !in_container
    {
        return Stopped::failed_to_start(reason.clone(), now_iso());
    }
    // Provisioning: on Fargate the ENI and the image pull take tens of seconds, all
    // of it inside the state's heartbeat window. A StopTask meanwhile stops the task
    // before its container ever starts.
    let delay = def
        .environment
        .iter()
        .find(|(k, _)| k == START_DELAY_VARIABLE)
        .and_then(|(_, v)| v.parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or(ctx.start_delay);
    if !delay.is_zero() {
        info!(task_arn = %task.task_arn, delay_ms = delay.as_millis() as u64, "provisioning");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|stopped| *stopped) => {
                return Stopped {
                    stop_code: "UserInitiated",
                    stopped_reason: "Task stopped by user".into(),
                    exit_code: None,
                    container_reason: None,
                    stopped_at: now_iso(),
                };
            }
        }
    }
    // The task role's session, as ECS provides it before the container starts: a
    // task never runs with the runner's credentials, nor without its role's.
    let env = match task_credentials(ctx, task, def).await {
        Ok(credentials) => crate::credentials::task_env(&ctx.base_env, credentials.as_ref()),
        Err(reason) => {
            warn!(task_arn = %task.task_arn, reason = %reason, "no task role credentials");
            return Stopped::failed_to_start(reason, now_iso());
        }
    };
    if let Some(containers) = ctx.containers.as_ref().filter(|_| in_container) {
        return match crate::container::local_image(&def.image, containers, &ctx.podman_env).await {
            Some(image) => crate::container::supervise(ctx, task, def, &env, image, stop).await,
            None => Stopped::failed_to_start(crate::image::cannot_pull(&def.image), now_iso()),
        };
    }
    let Launch::Exec { program, args } = launch else {
        unreachable!("a process task's image that cannot be pulled has returned above");
    };
    let crash = match crash(&def.environment) {
        Ok(crash) => crash,
        Err(e) => {
            return Stopped::failed_to_start(format!("CannotStartContainerError: {e}"), now_iso());
        }
    };
    let (log_path, log) = match crate::context::task_log(ctx, task) {
        Ok(opened) => opened,
        Err(stopped) => return stopped,
    };
    let mut command = Command::new(&program);
    command
        .args(&args)
        .env_clear()
        .envs(env)
        .envs(def.environment.iter().cloned())
        .envs(task.override_env(&task.container_name))
        .current_dir(&ctx.root)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file handle"))
        .stderr(log)
        // Its own process group, so signals reach everything the container started.
        .process_group(0);
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Stopped::failed_to_start(
                format!("CannotStartContainerError: {}: {e}", program.display()),
                now_iso(),
            );
        }
    };
    let pgid = child.id().expect("a started child has a pid") as i32;
    ctx.groups.lock().expect("groups lock").insert(pgid);
    info!(task_arn = %task.task_arn, program = %program.display(), pid = pgid, log = %log_path.display(), "task running");
    put_event(ctx, task, &running_detail(task)).await;

    let mut ticks = tokio::time::interval(Duration::from_millis(200));
    let mut oom = false;
    let mut user_stop = false;
    let mut kill_at: Option<tokio::time::Instant> = None;
    let mut watch_log = crash.as_ref().map(|_| (MarkerWatch::default(), 0u64));
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            _ = ticks.tick() => {
                if let Some(limit) = def.memory_bytes
                    && !oom
                    && processes::rss_bytes(pgid) > limit
                {
                    warn!(task_arn = %task.task_arn, limit, "over its memory: SIGKILL");
                    oom = true;
                    processes::signal_task(pgid, libc::SIGKILL);
                }
                if let (Some(crash), Some((watcher, offset))) = (&crash, watch_log.as_mut())
                    && log_grew_with(&log_path, offset, watcher, &crash.marker)
                {
                    if crash.freeze {
                        warn!(task_arn = %task.task_arn, marker = %crash.marker, "fault: SIGSTOP at the marker");
                        processes::signal_task(pgid, libc::SIGSTOP);
                    } else {
                        warn!(task_arn = %task.task_arn, marker = %crash.marker, oom = crash.oom, "fault: SIGKILL at the marker");
                        oom |= crash.oom;
                        processes::signal_task(pgid, libc::SIGKILL);
                    }
                    watch_log = None;
                }
                if kill_at.is_some_and(|t| tokio::time::Instant::now() >= t) {
                    warn!(task_arn = %task.task_arn, "still running after the stop timeout: SIGKILL");
                    processes::signal_task(pgid, libc::SIGKILL);
                    kill_at = None;
                }
            }
            changed = stop.changed(), if !user_stop => {
                if changed.is_ok() && *stop.borrow() {
                    info!(task_arn = %task.task_arn, "StopTask: SIGTERM");
                    user_stop = true;
                    processes::signal_group(pgid, libc::SIGTERM);
                    kill_at = Some(tokio::time::Instant::now() + def.stop_timeout);
                } else if changed.is_err() {
                    user_stop = true; // the runner is going away; keep waiting for the child
                }
            }
        }
    };
    ctx.groups.lock().expect("groups lock").remove(&pgid);
    let exit_code = match status {
        Ok(s) => s.code().map(i64::from).or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            s.signal().map(|sig| 128 + i64::from(sig))
        }),
        Err(_) => None,
    };
    Stopped::exited(exit_code, oom, user_stop)
}

/// The credentials of the task's role (RunTask's override, else the definition's):
/// `None` for a task without a role; an error, as the task's stopped reason, when
/// the role cannot be assumed.
async fn task_credentials(
    ctx: &Context,
    task: &TaskView,
    def: &Definition,
) -> Result<Option<crate::credentials::Creds>, String> {
    let Some(role) = crate::credentials::task_role(
        task.task_role_override.as_deref(),
        def.task_role_arn.as_deref(),
    ) else {
        info!(task_arn = %task.task_arn, "no task role: the task has no AWS credentials");
        return Ok(None);
    };
    let session = crate::credentials::session_name(task.task_id());
    match ctx.sessions.get(&ctx.sts, role, &session).await {
        Ok(creds) => {
            info!(task_arn = %task.task_arn, role, access_key_id = %creds.access_key_id, "task role session");
            Ok(Some(creds))
        }
        Err(e) => Err(crate::credentials::cannot_assume(role, &e)),
    }
}

/// Read what the log gained since `offset`; true when the marker is in it.
fn log_grew_with(
    path: &std::path::Path,
    offset: &mut u64,
    watcher: &mut MarkerWatch,
    marker: &str,
) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let mut appended = Vec::new();
    if file.seek(SeekFrom::Start(*offset)).is_err() || file.read_to_end(&mut appended).is_err() {
        return false;
    }
    *offset += appended.len() as u64;
    watcher.feed(marker, &appended)
}

async fn report_stopped(
    ctx: &Context,
    task: &TaskView,
    stopped: &Stopped,
    fault: Option<EventFault>,
) {
    let mut container = aws_sdk_ecs::types::ContainerStateChange::builder()
        .container_name(&task.container_name)
        .status("STOPPED")
        .set_reason(stopped.container_reason.clone());
    if let Some(code) = stopped.exit_code {
        container = container.exit_code(code as i32);
    }
    let submitted = ctx
        .ecs
        .submit_task_state_change()
        .cluster(&task.cluster_arn)
        .task(&task.task_arn)
        .status("STOPPED")
        .reason(&stopped.stopped_reason)
        .containers(container.build())
        .send()
        .await;
    if let Err(e) = submitted {
        warn!(task_arn = %task.task_arn, error = %baton::error::display_chain(&e), "SubmitTaskStateChange failed");
    }
    let detail = stopped_detail(task, stopped);
    match fault {
        None => put_event(ctx, task, &detail).await,
        Some(EventFault::Drop) => warn!(task_arn = %task.task_arn, "fault: STOPPED event dropped"),
        Some(EventFault::Duplicate) => {
            put_event(ctx, task, &detail).await;
            put_event(ctx, task, &detail).await;
        }
        Some(EventFault::Delay(by)) => {
            tokio::time::sleep(by).await;
            put_event(ctx, task, &detail).await;
        }
        Some(EventFault::Reorder) => {
            put_event(ctx, task, &detail).await;
            put_event(ctx, task, &running_detail(task)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::env;

    #[test]
    fn faults_parse_and_typos_are_errors() {
        assert_eq!(crash(&env(&[])).unwrap(), None);
        assert_eq!(
            crash(&env(&[(FAULT_VARIABLE, "oom@soak: half")])).unwrap(),
            Some(Crash {
                marker: "soak: half".into(),
                oom: true,
                freeze: false,
            })
        );
        assert_eq!(
            crash(&env(&[(FAULT_VARIABLE, "freeze@job started")])).unwrap(),
            Some(Crash {
                marker: "job started".into(),
                oom: false,
                freeze: true,
            })
        );
        for bad in ["kill", "kill@", "boom@x"] {
            assert!(crash(&env(&[(FAULT_VARIABLE, bad)])).is_err(), "{bad}");
        }
        assert_eq!(
            event_fault(&env(&[(EVENT_FAULT_VARIABLE, "delay:1500")])).unwrap(),
            Some(EventFault::Delay(Duration::from_millis(1500)))
        );
        assert_eq!(
            event_fault(&env(&[(EVENT_FAULT_VARIABLE, "drop")])).unwrap(),
            Some(EventFault::Drop)
        );
        assert!(event_fault(&env(&[(EVENT_FAULT_VARIABLE, "delay:soon")])).is_err());
    }

    #[test]
    fn a_marker_split_across_reads_is_found() {
        let mut watch = MarkerWatch::default();
        assert!(!watch.feed("job done", b"{\"message\":\"job d"));
        assert!(watch.feed("job done", b"one\"}"));
        let mut watch = MarkerWatch::default();
        assert!(!watch.feed("marker", &vec![b'x'; 10_000]));
        assert!(watch.carry.len() < 10);
    }
}
