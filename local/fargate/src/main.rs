//! The local stack's Fargate: picks up the tasks `RunTask` created in the local ECS
//! and runs each as a local process, then reports it STOPPED to ECS and EventBridge
//! as AWS would.

mod cgroup;
mod container;
mod context;
mod credentials;
mod image;
mod processes;
mod report;
mod task;
#[cfg(test)]
mod test_util;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use context::{Context, Definition};
use report::TaskView;

#[derive(Parser)]
#[command(about = "Run the local ECS cluster's tasks as local processes")]
struct Args {
    /// Cluster name or ARN.
    #[arg(long, env = "BATON_CLUSTER")]
    cluster: String,
    /// The built baton-worker, which stands in for the worker image.
    #[arg(long)]
    worker: PathBuf,
    /// Folder for each task's output (<task id>.log).
    #[arg(long, default_value = ".local/logs")]
    logs: PathBuf,
    /// Folder that relative `local:` executables are found in, and tasks run in.
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// How often to look for new and stopped tasks.
    #[arg(long, default_value_t = 200)]
    poll_ms: u64,
    /// Time between RunTask and a container's start, as Fargate's provisioning and
    /// image pull take (a task's BATON_LOCAL_START_DELAY_MS overrides it).
    #[arg(long, env = "BATON_LOCAL_START_DELAY_MS", default_value_t = 0)]
    start_delay_ms: u64,
    /// Run every image that is not `local:` as a real container with podman, the
    /// worker image as this one (`make image`); without it, as processes.
    #[arg(long, env = "BATON_LOCAL_WORKER_IMAGE")]
    container_worker_image: Option<String>,
    /// The AWS endpoint the tasks use, when not the runner's (the fault soak's hop).
    #[arg(long, env = "BATON_LOCAL_TASK_ENDPOINT")]
    task_endpoint: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    baton::logs::init();
    let args = Args::parse();
    std::fs::create_dir_all(&args.logs)
        .with_context(|| format!("creating {}", args.logs.display()))?;
    let sdk = baton::aws::load_config().await;
    let mut base_env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("AWS_") || ["PATH", "HOME", "LANG", "TMPDIR"].contains(&k.as_str())
        })
        .collect();
    base_env.push(("BATON_LOG_FORMAT".into(), "json".into()));
    // Tasks may reach AWS another way than the runner does (the fault soak's hop).
    if let Some(endpoint) = args.task_endpoint.as_ref().filter(|e| !e.is_empty()) {
        base_env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
        base_env.push(("AWS_ENDPOINT_URL".into(), endpoint.clone()));
    }
    let ctx = Arc::new(Context {
        ecs: aws_sdk_ecs::Client::new(&sdk),
        events: aws_sdk_eventbridge::Client::new(&sdk),
        sts: aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&sdk)
                .timeout_config(baton::aws::api_timeouts())
                .build(),
        ),
        sessions: Default::default(),
        worker: std::fs::canonicalize(&args.worker)
            .with_context(|| format!("worker {}", args.worker.display()))?,
        root: std::fs::canonicalize(&args.root)?,
        logs: std::fs::canonicalize(&args.logs)?,
        base_env,
        groups: Default::default(),
        start_delay: Duration::from_millis(args.start_delay_ms),
        containers: args
            .container_worker_image
            .filter(|i| !i.is_empty())
            .map(|worker_image| context::Containers { worker_image }),
        podman_env: std::env::vars()
            .filter(|(k, _)| k.starts_with("CONTAINERS_") || k == "PATH" || k == "HOME")
            .collect(),
        containers_running: Default::default(),
    });
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    info!(cluster = %args.cluster, "local Fargate running");

    let mut running: HashMap<String, watch::Sender<bool>> = HashMap::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut definitions: HashMap<String, Definition> = HashMap::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<String>();
    let poll = Duration::from_millis(args.poll_ms);
    let mut last_stopped_check = std::time::Instant::now();
    loop {
        while let Ok(arn) = done_rx.try_recv() {
            running.remove(&arn);
        }
        match desired_running(&ctx.ecs, &args.cluster).await {
            Ok(listed) => {
                // Ours, no longer desired RUNNING: StopTask was called.
                for (arn, stop) in &running {
                    if !listed.contains(arn) && !*stop.borrow() {
                        let _ = stop.send(true);
                    }
                }
                let fresh: Vec<String> = listed.into_iter().filter(|a| !seen.contains(a)).collect();
                if !fresh.is_empty()
                    && let Err(e) = start(
                        &ctx,
                        &args.cluster,
                        &fresh,
                        &mut definitions,
                        &mut running,
                        &mut seen,
                        &done_tx,
                    )
                    .await
                {
                    warn!(error = %e, "could not start tasks");
                }
            }
            Err(e) => warn!(error = %e, "ListTasks failed"),
        }
        if last_stopped_check.elapsed() >= STOPPED_CHECK {
            last_stopped_check = std::time::Instant::now();
            if let Err(e) = stop_unseen(&ctx, &args.cluster, &mut seen).await {
                warn!(error = %e, "could not report tasks stopped before they started");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = terminate.recv() => {
                info!(tasks = running.len(), "stopping: killing the tasks still running");
                ctx.kill_all();
                return Ok(());
            }
        }
    }
}

/// How often the runner looks for tasks stopped before it saw them.
const STOPPED_CHECK: Duration = Duration::from_secs(5);

/// Tasks StopTask stopped before this runner listed them as meant to run: reported
/// STOPPED, as ECS stops a task that has not started (task::stopped_before_start).
async fn stop_unseen(
    ctx: &Arc<Context>,
    cluster: &str,
    seen: &mut HashSet<String>,
) -> anyhow::Result<()> {
    let (stopped, _) = baton::aws::list_tasks_by_desired_status(
        &ctx.ecs,
        cluster,
        aws_sdk_ecs::types::DesiredStatus::Stopped,
    )
    .await
    .map_err(|e| anyhow::anyhow!(e))?;
    let unseen: Vec<String> = stopped.into_iter().filter(|a| !seen.contains(a)).collect();
    if unseen.is_empty() {
        return Ok(());
    }
    let described = baton::aws::describe_tasks(&ctx.ecs, cluster, &unseen)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    for sdk_task in &described {
        let view = TaskView::from_sdk(sdk_task);
        seen.insert(view.task_arn.clone());
        if sdk_task.last_status() != Some("STOPPED") {
            task::stopped_before_start(ctx, &view).await;
        }
    }
    Ok(())
}

async fn desired_running(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
) -> anyhow::Result<HashSet<String>> {
    Ok(baton::aws::running_task_arns(ecs, cluster)
        .await
        .map_err(|e| anyhow::anyhow!(e))?
        .into_iter()
        .collect())
}

async fn start(
    ctx: &Arc<Context>,
    cluster: &str,
    fresh: &[String],
    definitions: &mut HashMap<String, Definition>,
    running: &mut HashMap<String, watch::Sender<bool>>,
    seen: &mut HashSet<String>,
    done: &mpsc::UnboundedSender<String>,
) -> anyhow::Result<()> {
    let described = baton::aws::describe_tasks(&ctx.ecs, cluster, fresh)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    for sdk_task in &described {
        let view = TaskView::from_sdk(sdk_task);
        if !definitions.contains_key(&view.task_definition_arn) {
            let def = ctx
                .ecs
                .describe_task_definition()
                .task_definition(&view.task_definition_arn)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!(baton::error::display_chain(&e)))?;
            let def = def
                .task_definition()
                .context("no task definition in the response")?;
            definitions.insert(view.task_definition_arn.clone(), Definition::from_sdk(def));
        }
        let def = definitions[&view.task_definition_arn].clone();
        let (stop_tx, stop_rx) = watch::channel(false);
        seen.insert(view.task_arn.clone());
        running.insert(view.task_arn.clone(), stop_tx);
        let (ctx, done) = (ctx.clone(), done.clone());
        tokio::spawn(async move {
            let arn = view.task_arn.clone();
            task::run(ctx, view, def, stop_rx).await;
            let _ = done.send(arn);
        });
    }
    Ok(())
}
