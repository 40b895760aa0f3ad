//! The worker's life: input → job → output → callback, with heartbeats, signals
//! and the exit code the local runner and ECS see.

use baton::error::{from_io, names};
use baton::limits::INLINE_RESULT_MAX_BYTES;
use baton::payload::{Payload, S3Pointer};
use baton::store::TransferMemory;
use baton::{CallbackClient, CallbackOutcome, Error, Store, TaskToken};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tracing::{Instrument, error, info, warn};

use crate::config::{InputSource, WorkerConfig, token_from};
use crate::jobs::{InputMeta, JobEntry, JobIo};
use crate::memory;
use crate::metrics::{RunContext, RunMetrics};
use crate::pipe::pipe;
use crate::progress::Progress;

/// Bytes buffered between the job and the upload.
const PIPE_BYTES: usize = 256 * 1024;

/// Why the job was stopped from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM (ECS stop, Spot interruption) or SIGINT.
    Signal,
    /// A heartbeat found the token closed: the execution has moved on.
    TokenClosed,
    /// No byte read or written for the configured time (`BATON_STALL_SECONDS`).
    Stalled,
}

/// How the worker ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Success,
    /// The job failed (or its input did not verify); reported as such.
    JobFailed,
    /// Bad or missing environment.
    BadConfig,
    /// The final callback could not be delivered or found the token closed: the
    /// watchdog takes over.
    Callback,
    /// Stopped by a signal.
    Interrupted,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::JobFailed => 1,
            ExitStatus::BadConfig => 2,
            ExitStatus::Callback => 3,
            ExitStatus::Interrupted => 143,
        }
    }
}

/// A failure with its `Baton.*` name.
#[derive(Debug)]
struct Failed {
    name: &'static str,
    message: String,
}

impl From<Error> for Failed {
    fn from(e: Error) -> Failed {
        Failed {
            name: e.name(),
            message: e.to_string(),
        }
    }
}

impl Failed {
    /// A job's I/O error: an input integrity failure keeps its name, anything
    /// else is the job's own failure.
    fn from_job(e: std::io::Error) -> Failed {
        match from_io(e) {
            // A plain I/O error of the job's own: the job failed.
            Error::Service {
                service: "io",
                message,
                ..
            } => Failed {
                name: names::WORKER_ERROR,
                message,
            },
            // S3 itself (a read that kept breaking off) keeps its own name.
            baton => baton.into(),
        }
    }
}

enum Outcome {
    Done(S3Pointer),
    Stopped(Stop),
    Failed(Failed),
}

/// Read the environment, run, and report: the whole worker. `jobs` are the jobs
/// `BATON_JOB` may name; `command` is a program to run instead (`exec`).
pub async fn main(jobs: &[JobEntry], command: Option<Vec<String>>) -> ExitStatus {
    let (stop_tx, stop_rx) = watch::channel(None);
    listen_for_signals(stop_tx.clone());
    let sdk = baton::aws::load_config().await;
    let get = |name: &str| std::env::var(name).ok();
    let config = match WorkerConfig::from_env(jobs, command) {
        Ok(config) => config,
        Err(e) => {
            error!(variable = e.variable, error = %e, "bad worker configuration");
            if let Ok(Some(token)) = token_from(&get) {
                let cause = json!({"variable": e.variable, "message": e.to_string()}).to_string();
                let _ = CallbackClient::new(&sdk)
                    .failure(&token, names::INVALID_INPUT, &cause)
                    .await;
            }
            return ExitStatus::BadConfig;
        }
    };
    let task = crate::metadata::task().await;
    let task_arn = task.task_arn;
    let span = tracing::info_span!(
        "worker",
        job = %config.job_name,
        execution = config.execution().unwrap_or(""),
        task_arn = task_arn.as_deref().unwrap_or(""),
        token = %config.token.as_ref().map(TaskToken::short_hash).unwrap_or_default(),
    );
    // The container's limit: its cgroup's, or the task's from ECS (on Fargate a
    // container without a memory of its own may show no cgroup limit).
    let limit = memory::MemoryLimit::tighter(memory::own_cgroup_limit(), task.memory_limit);
    let budget = memory::transfer_budget(config.transfer_memory, limit);
    let store = Store::new(baton::aws::s3_client(&sdk))
        .with_read_resume(config.read_idle, baton::store::DEFAULT_MAX_RESUMES)
        .with_memory(TransferMemory::split(budget.bytes));
    span.in_scope(|| {
        info!(
            transfer_memory_bytes = budget.bytes as u64,
            chosen_by = budget.chosen_by,
            memory_limit_bytes = budget.limit.map(|l| l.bytes),
            memory_limit_source = budget.limit.map(|l| l.source),
            transfer = %store.describe(),
            "transfer memory (BATON_TRANSFER_MEMORY)"
        )
    });
    let worker = Worker {
        store,
        callbacks: config.token.as_ref().map(|_| CallbackClient::new(&sdk)),
        task_arn,
        config,
    };
    worker.run(stop_tx, stop_rx).instrument(span).await
}

fn listen_for_signals(stop: watch::Sender<Option<Stop>>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => warn!("SIGTERM: stopping the job"),
            _ = int.recv() => warn!("SIGINT: stopping the job"),
        }
        let _ = stop.send(Some(Stop::Signal));
    });
}

pub struct Worker {
    pub config: WorkerConfig,
    pub store: Store,
    /// `None` in sync mode.
    pub callbacks: Option<CallbackClient>,
    pub task_arn: Option<String>,
}

impl Worker {
    pub async fn run(
        &self,
        stop_tx: watch::Sender<Option<Stop>>,
        stop_rx: watch::Receiver<Option<Stop>>,
    ) -> ExitStatus {
        let started = std::time::Instant::now();
        info!(
            mode = if self.callbacks.is_some() {
                "callback"
            } else {
                "sync"
            },
            "worker started"
        );
        let progress = Progress::default();
        let watcher = self.watch_progress(&progress, stop_tx.clone());
        let heartbeats = self.start_heartbeats(stop_tx);
        let outcome = self.work(stop_rx, &progress).await;
        for task in [heartbeats, watcher].into_iter().flatten() {
            task.abort();
        }
        let status = self.report(outcome).await;
        let seconds = started.elapsed().as_secs_f64();
        info!(
            exit_code = status.code(),
            seconds,
            peak_rss_bytes = peak_rss_bytes(),
            "worker finished"
        );
        self.print_metrics(&progress, seconds, status);
        status
    }

    /// The run's metrics, as one EMF line on stdout (the task's log).
    fn print_metrics(&self, progress: &Progress, seconds: f64, status: ExitStatus) {
        let run = RunMetrics {
            bytes_read: progress.bytes_read(),
            bytes_written: progress.bytes_written(),
            seconds,
            peak_memory: memory::peak_memory(),
        };
        let at = RunContext {
            stack: self.config.stack.clone(),
            step: self.config.step(),
            execution: self.config.execution().map(String::from),
            job: self.config.job_name.clone(),
            task_arn: self.task_arn.clone(),
        };
        crate::metrics::metric_set(&run, &at, status.code()).emit();
    }

    /// Give up when the job moved no byte, in or out, for `BATON_STALL_SECONDS`.
    fn watch_progress(
        &self,
        progress: &Progress,
        stop: watch::Sender<Option<Stop>>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let limit = self.config.stall?;
        let progress = progress.clone();
        let every = (limit / 4).clamp(
            std::time::Duration::from_millis(100),
            std::time::Duration::from_secs(5),
        );
        let task = async move {
            loop {
                tokio::time::sleep(every).await;
                if progress.idle() >= limit {
                    warn!(
                        idle_seconds = progress.idle().as_secs(),
                        bytes = progress.bytes(),
                        "no byte read or written for too long; giving up"
                    );
                    let _ = stop.send(Some(Stop::Stalled));
                    return;
                }
            }
        };
        Some(tokio::spawn(task.in_current_span()))
    }

    fn start_heartbeats(
        &self,
        stop: watch::Sender<Option<Stop>>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let (callbacks, token) = (self.callbacks.clone()?, self.config.token.clone()?);
        let interval = self.config.heartbeat?;
        let task = async move {
            // The first beat goes out at once: the state's heartbeat clock has been
            // running since RunTask, through Fargate's start-up and the image pull.
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match callbacks.heartbeat(&token).await {
                    Ok(CallbackOutcome::Delivered) => tracing::debug!("heartbeat"),
                    Ok(CallbackOutcome::AlreadyClosed { code }) => {
                        warn!(code, "heartbeat found the token closed; stopping the job");
                        let _ = stop.send(Some(Stop::TokenClosed));
                        return;
                    }
                    Ok(CallbackOutcome::Rejected { code }) => {
                        // Not "closed": the job goes on, and its final callback says
                        // whether the token is any good. Keep beating: a beat that
                        // raced the state's own start is accepted next time.
                        error!(
                            code,
                            "Step Functions rejected the task token on a heartbeat"
                        );
                    }
                    Err(e) => warn!(error = %e, "heartbeat failed; will try again"),
                }
            }
        };
        Some(tokio::spawn(task.in_current_span()))
    }

    async fn input_payload(&self) -> Result<Payload, Error> {
        match &self.config.input {
            InputSource::Payload(p) => Ok(p.clone()),
            InputSource::Object { bucket, key } => {
                Ok(Payload::S3(self.store.head(bucket, key).await?))
            }
        }
    }

    async fn work(&self, mut stop: watch::Receiver<Option<Stop>>, progress: &Progress) -> Outcome {
        let payload = match self.input_payload().await {
            Ok(p) => p,
            Err(e) => return Outcome::Failed(e.into()),
        };
        let size = baton::store::data_size(&payload);
        let meta = match &payload {
            Payload::S3(p) => InputMeta {
                size,
                content_type: p.content_type.clone(),
                source: p.uri(),
            },
            Payload::Inline(v) => InputMeta {
                size,
                content_type: Some(baton::payload::inline_content_type(v).into()),
                source: "inline".into(),
            },
            Payload::Manifest(entries) => InputMeta {
                size,
                content_type: None,
                source: format!("manifest of {} entries", entries.len()),
            },
        };
        match meta.size {
            Some(bytes) => info!(input = %meta.source, bytes, "reading input"),
            // A stored manifest's pointer states its JSON's size, not its data's.
            None => info!(input = %meta.source, bytes = "known once read", "reading input"),
        }
        let mut reader = match self.store.read_payload(&payload).await {
            Ok(r) => progress.reading(r),
            Err(e) => return Outcome::Failed(e.into()),
        };
        let (mut writer, pipe_reader) = pipe(PIPE_BYTES);
        let (stopping_tx, stopping) = watch::channel(false);
        let grace = self.config.job.stop_grace();
        let job = async {
            let ran = {
                let run = self.config.job.run(JobIo {
                    input: &mut reader,
                    output: &mut writer,
                    meta: &meta,
                    stopping,
                });
                tokio::pin!(run);
                tokio::select! {
                    r = &mut run => r.map_err(Failed::from_job),
                    s = stop.wait_for(Option::is_some) => {
                        let why = s.map(|s| s.expect("set")).unwrap_or(Stop::Signal);
                        // A job that holds a child process ends it itself, within
                        // its grace period; any other job is dropped here.
                        if let Some(grace) = grace {
                            let _ = stopping_tx.send(true);
                            let _ = tokio::time::timeout(grace + std::time::Duration::from_secs(1), &mut run).await;
                        }
                        return Err(Outcome::Stopped(why));
                    }
                }
            };
            // A job that gave up on bad data may have been fed corrupt input: read the
            // rest to verify it, so the failure names the real cause.
            let ran = match ran {
                Err(f) if f.name == names::WORKER_ERROR && payload.is_s3() => {
                    match tokio::io::copy(&mut reader, &mut tokio::io::sink()).await {
                        Err(e) => {
                            let cause = Failed::from_job(e);
                            Err(if cause.name == names::INPUT_INTEGRITY {
                                cause
                            } else {
                                f
                            })
                        }
                        Ok(_) => Err(f),
                    }
                }
                other => other,
            };
            match ran {
                Ok(()) => writer
                    .finish()
                    .await
                    .map_err(|e| Outcome::Failed(Failed::from_job(e))),
                Err(f) => Err(Outcome::Failed(f)),
            }
            // `writer` is dropped here on every path: unfinished output aborts the upload.
        };
        let key = self.config.output_key();
        let put = self.store.put(
            &self.config.output.bucket,
            &key,
            progress.writing(pipe_reader),
            Some(self.config.job.content_type()),
        );
        let (job_result, put_result) = tokio::join!(job, put);
        match (job_result, put_result) {
            (Ok(()), Ok(pointer)) => Outcome::Done(pointer),
            // The upload failed first and the job then could not write: the upload's error is the cause.
            (Err(Outcome::Failed(f)), Err(e)) if f.message.contains("broken pipe") => {
                Outcome::Failed(e.into())
            }
            (Err(outcome), _) => outcome,
            (Ok(()), Err(e)) => Outcome::Failed(e.into()),
        }
    }

    async fn report(&self, outcome: Outcome) -> ExitStatus {
        let (Some(callbacks), Some(token)) = (&self.callbacks, &self.config.token) else {
            return self.report_sync(outcome).await;
        };
        match outcome {
            Outcome::Done(pointer) => {
                let payload = self.maybe_inline(pointer).await;
                let delivered = callbacks.success(token, &payload.to_json()).await;
                info!(output = %payload.to_json(), "job done");
                closing(delivered, ExitStatus::Success)
            }
            Outcome::Stopped(Stop::TokenClosed) => {
                warn!(
                    "the token was closed while the job ran (timed out or the execution stopped); no callback"
                );
                ExitStatus::Callback
            }
            Outcome::Stopped(Stop::Stalled) => {
                let limit = self.config.stall.unwrap_or_default().as_secs();
                let cause = self.cause(&format!(
                    "no byte read or written for {limit} s (BATON_STALL_SECONDS); the job was stopped and its partial output discarded"
                ));
                error!(error = names::WORKER_ERROR, cause, "stalled");
                let delivered = callbacks.failure(token, names::WORKER_ERROR, &cause).await;
                closing(delivered, ExitStatus::JobFailed)
            }
            Outcome::Stopped(Stop::Signal) => {
                // Whether this stop deserves a retry depends on who stopped the task
                // (an operator's StopTask must not run it again; a Spot reclaim or
                // Fargate maintenance should), and only the stop code says that. The
                // worker cannot see it; the watchdog reads it from the STOPPED event,
                // so the worker leaves the token to the watchdog.
                warn!(
                    "stopped by a signal before finishing; partial output discarded; the watchdog reports the stop by its stop code"
                );
                ExitStatus::Interrupted
            }
            Outcome::Failed(f) => {
                let cause = self.cause(&f.message);
                error!(error = f.name, cause, "job failed");
                let delivered = callbacks.failure(token, f.name, &cause).await;
                closing(delivered, ExitStatus::JobFailed)
            }
        }
    }

    /// Sync mode: no callbacks; the output Payload goes to `<prefix>result.json`
    /// and the exit code tells the outcome.
    async fn report_sync(&self, outcome: Outcome) -> ExitStatus {
        match outcome {
            Outcome::Done(pointer) => {
                let record = Payload::S3(pointer).to_json();
                let key = self.config.result_key();
                match self
                    .store
                    .put(
                        &self.config.output.bucket,
                        &key,
                        record.as_bytes(),
                        Some("application/json"),
                    )
                    .await
                {
                    Ok(_) => {
                        info!(output = %record, result = %format!("s3://{}/{key}", self.config.output.bucket), "job done");
                        ExitStatus::Success
                    }
                    Err(e) => {
                        error!(error = %e, "could not write the result record");
                        ExitStatus::JobFailed
                    }
                }
            }
            Outcome::Stopped(Stop::Stalled) => {
                error!("no byte read or written for too long (BATON_STALL_SECONDS); stopped");
                ExitStatus::JobFailed
            }
            Outcome::Stopped(_) => {
                warn!("interrupted");
                ExitStatus::Interrupted
            }
            Outcome::Failed(f) => {
                error!(error = f.name, cause = %self.cause(&f.message), "job failed");
                ExitStatus::JobFailed
            }
        }
    }

    /// Small outputs travel inline: JSON as JSON when it is exactly its compact
    /// form, other UTF-8 text as a string; anything else stays a pointer.
    async fn maybe_inline(&self, pointer: S3Pointer) -> Payload {
        if pointer.size as usize > INLINE_RESULT_MAX_BYTES {
            return Payload::S3(pointer);
        }
        let mut bytes = Vec::new();
        let read = match self.store.open(&pointer).await {
            Ok(mut r) => r.read_to_end(&mut bytes).await.map_err(from_io),
            Err(e) => Err(e),
        };
        if let Err(e) = read {
            warn!(error = %e, "could not read back a small output; passing a pointer");
            return Payload::S3(pointer);
        }
        if let Ok(value) = serde_json::from_slice::<Value>(&bytes)
            && serde_json::to_vec(&value).is_ok_and(|compact| compact == bytes)
        {
            return Payload::Inline(value);
        }
        match String::from_utf8(bytes) {
            Ok(text) => Payload::Inline(Value::String(text)),
            Err(_) => Payload::S3(pointer),
        }
    }

    fn cause(&self, message: &str) -> String {
        let cause = json!({
            "message": message,
            "job": self.config.job_name,
            "execution": self.config.execution(),
            "output": format!("s3://{}/{}", self.config.output.bucket, self.config.output_key()),
            "taskArn": self.task_arn,
        });
        // Valid JSON within the cause limit however long the message: fields shrink,
        // the text is never cut.
        baton::limits::fit_json_cause(&cause, 16_384)
    }
}

/// The exit status once the final callback is sent: a closed token or an
/// undeliverable callback leaves it to the watchdog.
fn closing(delivered: Result<CallbackOutcome, Error>, status: ExitStatus) -> ExitStatus {
    match delivered {
        Ok(CallbackOutcome::Delivered) => status,
        Ok(CallbackOutcome::AlreadyClosed { code }) => {
            warn!(
                code,
                "the token was already closed; the execution has moved on"
            );
            ExitStatus::Callback
        }
        Ok(CallbackOutcome::Rejected { code }) => {
            error!(
                code,
                "Step Functions rejected the task token as malformed; the callback was not delivered"
            );
            ExitStatus::Callback
        }
        Err(e) => {
            error!(error = %e, "the callback could not be delivered; the watchdog will fail the task");
            ExitStatus::Callback
        }
    }
}

/// Peak resident set size so far (VmHWM), for the closing log line.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    kb.trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()
        .map(|kb| kb * 1024)
}
