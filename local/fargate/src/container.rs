//! One ECS task as a real container (podman, daemonless, runc): what only a container
//! shows — the program as PID 1, a read-only root filesystem, the non-root user, the
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
/// Baton worker's repository, else the image itself if it is in local storage.
pub async fn local_image(image: &str, containers: &Containers) -> Option<String> {
    let repository = image.rsplit('/').next().unwrap_or(image);
    let repository = repository.split(['@', ':']).next().unwrap_or(repository);
    if repository == "baton-worker" {
        return Some(containers.worker_image.clone());
    }
    let exists = Command::new("podman")
        .args(["image", "exists", image])
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
    if !def.entry_point.is_empty() {
        command.arg(format!(
            "--entrypoint={}",
            serde_json::to_string(&def.entry_point).expect("strings")
        ));
    }
    // The endpoint and credentials (AWS_*), then the task definition's environment and
    // the overrides, as ECS layers them.
    let aws = ctx
        .base_env
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
    put_event(ctx, task, &running_detail(task)).await;

    let mut user_stop = false;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            changed = stop.changed(), if !user_stop => {
                user_stop = true;
                if changed.is_ok() && *stop.borrow() {
                    // ECS: SIGTERM to the container's PID 1, SIGKILL after stopTimeout.
                    info!(task_arn = %task.task_arn, container = %name, "StopTask: podman stop");
                    let timeout = def.stop_timeout.as_secs().to_string();
                    let podman_env = ctx.podman_env.clone();
                    let name = name.clone();
                    tokio::spawn(async move {
                        let _ = Command::new("podman")
                            .args(["stop", "-t", &timeout, &name])
                            .env_clear()
                            .envs(podman_env)
                            .stdout(Stdio::null())
                            .stderr(Stdio::null())
                            .status()
                            .await;
                    });
                }
            }
        }
    };
    let exit_code = status.ok().and_then(|s| s.code()).map(i64::from);
    let oom_flag = inspect(ctx, &name, "{{.State.OOMKilled}}").await.as_deref() == Some("true");
    remove(ctx, &name).await;
    ctx.containers_running
        .lock()
        .expect("containers lock")
        .remove(&name);
    if matches!(exit_code, Some(125..=127)) && !user_stop {
        // podman itself could not create or start the container.
        let reason = std::fs::read_to_string(&log_path).unwrap_or_default();
        let reason = reason.lines().last().unwrap_or("podman failed").to_string();
        return Stopped::failed_to_start(format!("CannotStartContainerError: {reason}"), now_iso());
    }
    // podman 4.3's conmon writes its OOM marker where it cannot be read back
    // (containers/conmon#504), so OOMKilled is often false: a SIGKILL (137) that
    // nobody here sent, in a container with a memory limit, is the kernel's OOM killer.
    let oom = oom_flag || (exit_code == Some(137) && !user_stop && def.memory_bytes.is_some());
    if oom {
        warn!(task_arn = %task.task_arn, container = %name, "killed by the kernel at its memory limit");
    }
    Stopped::exited(exit_code, oom, user_stop)
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
