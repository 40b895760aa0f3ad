//! One ECS task as a real container (podman, daemonless, runc): what only a container
//! shows — the program as PID 1 (or ECS's init process before it, with
//! `initProcessEnabled`), a read-only root filesystem, the non-root user, the
//! memory limit enforced by the kernel, StopTask as SIGTERM then SIGKILL after the
//! container's stopTimeout — as ECS runs it. Networking is the host's (awsvpc is out of
//! scope). The container's output goes to the task's log file, as a process's does.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::context::{Containers, Context, Definition, put_event};
use crate::report::{Stopped, TaskView, now_iso, running_detail};

/// Which local image runs a task definition's image: the worker image for the
/// Baton worker's repository, else the image itself if it is in local storage (the
/// project's storage, through `podman_env`, where `make image` builds).
pub async fn local_image(
    image: &str,
    containers: &Containers,
    podman_env: &[(String, String)],
) -> Option<String> {
    let repository = image.rsplit('/').next().unwrap_or(image);
    let repository = repository.split(['@', ':']).next().unwrap_or(repository);
    if repository == "baton-worker" {
        return Some(containers.worker_image.clone());
    }
    let exists = Command::new("podman")
        .args(["image", "exists", image])
        .env_clear()
        .envs(podman_env.iter().cloned())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    exists.then(|| image.to_string())
}

/// The container's name: the task's id, so it can be found and removed.
pub fn name_of(task: &TaskView) -> String {
    format!("baton-task-{}", task.task_id())
}

/// Run the task's container to its end; what ECS would report.
pub async fn supervise(
    ctx: &Context,
    task: &TaskView,
    def: &Definition,
    env: &[(String, String)],
    image: String,
    mut stop: watch::Receiver<bool>,
) -> Stopped {
    let name = name_of(task);
    let (log_path, log) = match crate::context::task_log(ctx, task) {
        Ok(opened) => opened,
        Err(stopped) => return stopped,
    };
    let mut command = Command::new("podman");
    command.args([
        "run",
        "--name",
        &name,
        "--pull=never",
        "--network=host",
        "--log-driver=none",
    ]);
    if let Some(bytes) = def.memory_bytes {
        // A hard limit, swap included, as a Fargate task's memory is.
        command
            .arg(format!("--memory={bytes}b"))
            .arg(format!("--memory-swap={bytes}b"));
    }
    if def.readonly_root {
        // Writable only where ECS would mount a volume: /tmp (a task volume in the
        // template), as podman's read-only tmpfs mounts do.
        command.arg("--read-only");
    }
    if let Some(user) = &def.user {
        command.arg(format!("--user={user}"));
    }
    if def.init_process {
        // ECS's initProcessEnabled is docker run's --init; podman's is the same
        // option: catatonit (containers.conf's init_path) as PID 1, forwarding
        // signals to the entrypoint and reaping every orphan.
        command.arg("--init");
    }
    if !def.entry_point.is_empty() {
        command.arg(format!(
            "--entrypoint={}",
            serde_json::to_string(&def.entry_point).expect("strings")
        ));
    }
    // The endpoint and the task role's credentials (AWS_*, from `env`: never the
    // runner's), then the task definition's environment and the overrides, as ECS
    // layers them.
    let aws = env
        .iter()
        .filter(|(k, _)| k.starts_with("AWS_") || k == "BATON_LOG_FORMAT");
    for (key, value) in aws
        .cloned()
        .chain(def.environment.iter().cloned())
        .chain(task.override_env(&task.container_name))
    {
        command.arg("--env").arg(format!("{key}={value}"));
    }
    command
        .arg(&image)
        .args(&def.command)
        .env_clear()
        .envs(ctx.podman_env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file handle"))
        .stderr(log);
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Stopped::failed_to_start(
                format!("CannotStartContainerError: podman: {e}"),
                now_iso(),
            );
        }
    };
    ctx.containers_running
        .lock()
        .expect("containers lock")
        .insert(name.clone());
    info!(task_arn = %task.task_arn, container = %name, image = %image, log = %log_path.display(), "container running");
    // The kernel's count of OOM kills, read from the container's cgroup while it
    // runs: the cgroup is gone soon after the container ends.
    let oom_watch = tokio::spawn(watch_oom_kills(ctx.podman_env.clone(), name.clone()));
    put_event(ctx, task, &running_detail(task)).await;

    let mut user_stop = false;
    let mut stopping: Option<tokio::task::JoinHandle<()>> = None;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            changed = stop.changed(), if !user_stop => {
                user_stop = true;
                if changed.is_ok() && *stop.borrow() {
                    // ECS: SIGTERM to the container's PID 1, SIGKILL after stopTimeout.
                    info!(task_arn = %task.task_arn, container = %name, "StopTask: podman stop");
                    stopping = Some(tokio::spawn(stop_container(
                        ctx.podman_env.clone(),
                        name.clone(),
                        def.stop_timeout,
                    )));
                }
            }
        }
    };
    if let Some(stopping) = stopping {
        stopping.abort();
    }
    let exit_code = status.ok().and_then(|s| s.code()).map(i64::from);
    // Not found by now (podman never started it, or it ended within the first
    // look): nothing to read, and nothing left to look for.
    let oom_kills = if oom_watch.is_finished() {
        match oom_watch.await {
            Ok(Some(watch)) => watch.finish().await,
            _ => None,
        }
    } else {
        oom_watch.abort();
        None
    };
    let oom_flag = inspect(ctx, &name, "{{.State.OOMKilled}}").await.as_deref() == Some("true");
    remove(ctx, &name).await;
    ctx.containers_running
        .lock()
        .expect("containers lock")
        .remove(&name);
    info!(task_arn = %task.task_arn, container = %name, exit_code, oom_kills, oom_flag, user_stop, "container ended");
    match ending(exit_code, user_stop, oom_kills, oom_flag) {
        Ending::NotStarted => {
            // podman itself could not create or start the container.
            let reason = std::fs::read_to_string(&log_path).unwrap_or_default();
            let reason = reason.lines().last().unwrap_or("podman failed").to_string();
            Stopped::failed_to_start(format!("CannotStartContainerError: {reason}"), now_iso())
        }
        Ending::Exited { oom } => {
            if oom {
                warn!(task_arn = %task.task_arn, container = %name, "killed by the kernel at its memory limit");
            } else if exit_code == Some(137) && oom_kills.is_none() && !user_stop {
                warn!(task_arn = %task.task_arn, container = %name, "SIGKILL, and the container's OOM kill count could not be read: reported as a crash");
            }
            Stopped::exited(exit_code, oom, user_stop)
        }
    }
}

/// StopTask: `podman stop`, again every half second until `podman run` ends (the
/// caller aborts this then). A StopTask can come while `podman run` is still
/// creating the container (a loaded machine takes seconds): `podman stop` then
/// finds no container, or a created one not yet started, and the container would
/// then run to its end. ECS stops a task that is still PENDING.
async fn stop_container(podman_env: Vec<(String, String)>, name: String, timeout: Duration) {
    let timeout = timeout.as_secs().to_string();
    loop {
        let _ = Command::new("podman")
            .args(["stop", "-t", &timeout, &name])
            .env_clear()
            .envs(podman_env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// How a container ended, from what podman and the kernel say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// podman could not create or start it (its own exit codes, 125 to 127).
    NotStarted,
    /// It ran and ended, killed by the kernel's OOM killer (`oom`) or not.
    Exited { oom: bool },
}

/// Decide how a container ended. `oom_kills` is the kernel's count of OOM kills in
/// the container's memory cgroup (`None`: it could not be read), `oom_flag` podman's
/// `State.OOMKilled`.
///
/// Only the kernel's count or podman's flag says OOM; an exit code of 137 alone
/// does not: any SIGKILL gives it (`podman kill`, a stop timeout, a crash of the
/// host's making). podman 4.3's flag is often false after a real OOM kill (conmon
/// writes its marker to its working directory, containers/conmon#504), so the count
/// is the signal and the flag only confirms. As the runtimes behind ECS (Docker,
/// containerd) set their OOMKilled flag, an OOM kill of any process in the
/// container counts, whatever the exit code.
pub fn ending(
    exit_code: Option<i64>,
    user_stop: bool,
    oom_kills: Option<u64>,
    oom_flag: bool,
) -> Ending {
    let oom = oom_flag || oom_kills.is_some_and(|n| n > 0);
    if matches!(exit_code, Some(125..=127)) && !user_stop && !oom {
        return Ending::NotStarted;
    }
    Ending::Exited { oom }
}

/// Find the running container's memory cgroup (its PID from podman, then
/// `/proc/<pid>/cgroup`) and follow its OOM kill count. `None` when the container
/// ended before it was found, or its cgroup cannot be read.
async fn watch_oom_kills(
    podman_env: Vec<(String, String)>,
    name: String,
) -> Option<crate::cgroup::OomWatch> {
    loop {
        let out = Command::new("podman")
            .args([
                "inspect",
                "--format",
                "{{.State.Pid}} {{.State.Status}}",
                &name,
            ])
            .env_clear()
            .envs(podman_env.iter().cloned())
            .stderr(Stdio::null())
            .output()
            .await
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut fields = text.split_whitespace();
        let pid: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let status = fields.next().unwrap_or("");
        if pid > 0 {
            let proc_cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
            let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
            let Some(counter) = crate::cgroup::memory_cgroup(&proc_cgroup, &mountinfo) else {
                warn!(container = %name, "no memory cgroup found: OOM kills cannot be told from other SIGKILLs");
                return None;
            };
            info!(container = %name, cgroup = %counter.dir.display(), "following the container's OOM kill count");
            return Some(crate::cgroup::OomWatch::start(counter));
        }
        if matches!(status, "exited" | "stopped" | "removing") {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn inspect(ctx: &Context, name: &str, format: &str) -> Option<String> {
    let out = Command::new("podman")
        .args(["inspect", "--format", format, name])
        .env_clear()
        .envs(ctx.podman_env.iter().cloned())
        .output()
        .await
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

async fn remove(ctx: &Context, name: &str) {
    let removed = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new("podman")
            .args(["rm", "-f", "-t", "0", name])
            .env_clear()
            .envs(ctx.podman_env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status(),
    )
    .await;
    if !matches!(removed, Ok(Ok(s)) if s.success()) {
        warn!(container = name, "could not remove the container");
    }
}

/// The runner is stopping: remove every container it runs (synchronously).
pub fn remove_all(podman_env: &[(String, String)], names: &[String]) {
    if names.is_empty() {
        return;
    }
    let _ = std::process::Command::new("podman")
        .args(["rm", "-f", "-t", "0"])
        .args(names)
        .env_clear()
        .envs(podman_env.iter().cloned())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{OOM_REASON, stopped_detail};
    use baton::ecs_event::error_name;

    #[tokio::test]
    async fn a_stop_task_keeps_stopping_until_podman_run_ends() {
        // A StopTask while `podman run` is still creating the container: the first
        // `podman stop` finds nothing (exit 125), and the container comes a moment
        // later. A stand-in podman records each call and fails the first two.
        let dir = std::env::temp_dir().join(format!("fake-podman-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let calls = dir.join("calls");
        let script = dir.join("podman");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$@\" >> {calls}\n[ $(wc -l < {calls}) -gt 2 ]\n",
                calls = calls.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let path = format!("{}:/usr/bin:/bin", dir.display());
        let env = vec![("PATH".to_string(), path)];
        let stopping = stop_container(env, "baton-task-1".into(), Duration::from_secs(30));
        // It runs until its caller aborts it, when `podman run` ends.
        let ended = tokio::time::timeout(Duration::from_millis(1800), stopping).await;
        assert!(
            ended.is_err(),
            "it gave up while the container could still start"
        );
        let calls = std::fs::read_to_string(&calls).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(calls.lines().count() >= 3, "{calls}");
        assert!(
            calls.lines().all(|c| c == "stop -t 30 baton-task-1"),
            "{calls}"
        );
    }

    /// What the watchdog answers for a container that ended so.
    fn error_for(
        exit_code: Option<i64>,
        user_stop: bool,
        oom_kills: Option<u64>,
        oom_flag: bool,
    ) -> &'static str {
        let stopped = match ending(exit_code, user_stop, oom_kills, oom_flag) {
            Ending::NotStarted => {
                Stopped::failed_to_start("CannotStartContainerError: x".into(), now_iso())
            }
            Ending::Exited { oom } => Stopped::exited(exit_code, oom, user_stop),
        };
        error_name(&stopped_detail(&TaskView::default(), &stopped))
    }

    #[test]
    fn a_sigkill_is_out_of_memory_only_when_the_kernel_counted_an_oom_kill() {
        // (exit code, StopTask, OOM kills counted, podman's flag) → the watchdog's error.
        let rows = [
            // `podman kill -s KILL`, or any SIGKILL nobody here sent: a crash.
            (Some(137), false, Some(0), false, "Baton.ContainerExited"),
            // The kernel's OOM killer: counted in the cgroup; podman's flag often false.
            (Some(137), false, Some(1), false, "Baton.OutOfMemory"),
            // podman's flag alone is enough.
            (Some(137), false, None, true, "Baton.OutOfMemory"),
            // Count unknown and no flag: no guessing from the exit code.
            (Some(137), false, None, false, "Baton.ContainerExited"),
            // An OOM kill of any process (PID 1 lives on and exits 1, or even 0):
            // the runtimes behind ECS set OOMKilled all the same.
            (Some(1), false, Some(1), false, "Baton.OutOfMemory"),
            (Some(0), false, Some(2), false, "Baton.OutOfMemory"),
            (Some(0), false, Some(0), false, "Baton.NoCallback"),
            // StopTask: SIGTERM, then SIGKILL after stopTimeout; no OOM kill counted.
            (Some(137), true, Some(0), false, "Baton.TaskStopped"),
            (Some(143), true, Some(0), false, "Baton.TaskStopped"),
            // An OOM kill during the stop is still one, as ECS reports it.
            (Some(137), true, Some(1), false, "Baton.OutOfMemory"),
            // podman's own exit codes: the container never started…
            (Some(125), false, None, false, "Baton.TaskFailedToStart"),
            (Some(127), false, Some(0), false, "Baton.TaskFailedToStart"),
            // …unless it was stopped meanwhile.
            (Some(125), true, None, false, "Baton.TaskStopped"),
        ];
        for (exit_code, user_stop, oom_kills, oom_flag, error) in rows {
            assert_eq!(
                error_for(exit_code, user_stop, oom_kills, oom_flag),
                error,
                "exit {exit_code:?}, stopped {user_stop}, OOM kills {oom_kills:?}, flag {oom_flag}"
            );
        }
        assert_eq!(
            ending(Some(137), false, Some(1), false),
            Ending::Exited { oom: true }
        );
        assert_eq!(
            Stopped::exited(Some(137), true, true)
                .container_reason
                .as_deref(),
            Some(OOM_REASON)
        );
    }
}
