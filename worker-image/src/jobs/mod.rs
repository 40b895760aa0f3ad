//! Jobs: what a worker does between reading its input and writing its output.
//!
//! A job is a reader → writer transformation: a type implementing [`Job`],
//! registered by name with [`job`]. The built-in jobs ([`builtin`]) use exactly the
//! seam a user's own crate does.

use std::io;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};

pub use crate::settings::{ConfigError, Lookup, setting};

pub mod copy;
pub mod digest;
pub mod sleep;
pub mod top_words;
pub mod word_count;

/// The input stream (verified as it is read).
pub type JobInput<'a> = &'a mut (dyn AsyncRead + Send + Unpin);
/// The output stream (uploaded as it is written).
pub type JobOutput<'a> = &'a mut (dyn AsyncWrite + Send + Unpin);

/// What is known of the input before it is read.
#[derive(Debug, Clone)]
pub struct InputMeta {
    /// The bytes the job reads, as the Payload states them; `None` for a stored
    /// manifest (a merged fan-out's), whose pointer states its JSON's size, not the
    /// data it lists.
    pub size: Option<u64>,
    pub content_type: Option<String>,
    /// `s3://bucket/key` or `inline`.
    pub source: String,
}

/// The streams of one run, and what is known of the input.
pub struct JobIo<'a> {
    pub input: JobInput<'a>,
    pub output: JobOutput<'a>,
    pub meta: &'a InputMeta,
    /// Turns true when the worker is asked to stop (SIGTERM, a closed token, a
    /// stall). Jobs that declare a [`DynJob::stop_grace`] watch it to end cleanly;
    /// others are simply dropped.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

/// A job: implement this, then register it with [`job`] (in [`builtin`] for the
/// jobs of this crate, or in your own `main` for yours).
pub trait Job: Send + Sync + Sized + 'static {
    /// Content type of the output.
    const CONTENT_TYPE: &'static str;

    /// Build the job, reading its own settings through `get`.
    fn create(get: Lookup<'_>) -> Result<Self, ConfigError>;

    /// Read the input to its end and write the result to the output. An error that
    /// wraps a `baton::Error` (an integrity failure of the input) keeps its name;
    /// any other error is `Baton.WorkerError`.
    fn run(&self, io: JobIo<'_>) -> impl Future<Output = io::Result<()>> + Send;
}

/// Any [`Job`] behind a pointer, as the registry hands them out. Implemented once,
/// for every job.
pub trait DynJob: Send + Sync {
    fn content_type(&self) -> &'static str;
    fn run<'a>(&'a self, io: JobIo<'a>) -> BoxFuture<'a, io::Result<()>>;
    /// How long the job may take to end by itself once `io.stopping` turns true;
    /// `None` (every [`Job`]): it is dropped at once.
    fn stop_grace(&self) -> Option<std::time::Duration> {
        None
    }
}

impl<J: Job> DynJob for J {
    fn content_type(&self) -> &'static str {
        J::CONTENT_TYPE
    }

    fn run<'a>(&'a self, io: JobIo<'a>) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(Job::run(self, io))
    }
}

type Constructor = fn(Lookup<'_>) -> Result<Box<dyn DynJob>, ConfigError>;

fn boxed<J: Job>(get: Lookup<'_>) -> Result<Box<dyn DynJob>, ConfigError> {
    Ok(Box::new(J::create(get)?))
}

/// A job, under the name `BATON_JOB` selects it by. Make one with [`job`].
#[derive(Clone, Copy)]
pub struct JobEntry {
    pub name: &'static str,
    constructor: Constructor,
}

impl std::fmt::Debug for JobEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("JobEntry").field(&self.name).finish()
    }
}

/// `BATON_JOB=name` runs `J`: what a user's `main` hands to
/// [`crate::main_with`], and how the built-in jobs are registered too.
pub fn job<J: Job>(name: &'static str) -> JobEntry {
    JobEntry {
        name,
        constructor: boxed::<J>,
    }
}

/// The jobs built into `baton-worker`.
pub fn builtin() -> Vec<JobEntry> {
    vec![
        job::<copy::Copy>("copy"),
        job::<digest::Digest>("digest"),
        job::<word_count::WordCount>("word-count"),
        job::<top_words::TopWords>("top-words"),
        job::<sleep::Sleep>("sleep"),
    ]
}

pub fn names(jobs: &[JobEntry]) -> Vec<&'static str> {
    jobs.iter().map(|j| j.name).collect()
}

/// Build the job `name` from `jobs`, reading its settings through `get`.
pub fn create(
    jobs: &[JobEntry],
    name: &str,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Box<dyn DynJob>, ConfigError> {
    let Some(entry) = jobs.iter().find(|j| j.name == name) else {
        return Err(ConfigError {
            variable: "BATON_JOB",
            message: format!("unknown job {name:?}; one of: {}", names(jobs).join(", ")),
        });
    };
    (entry.constructor)(get)
}

/// A job's own failure (bad input data, a limit reached).
pub(crate) fn job_error(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// Run a job over in-memory input; its output.
    pub async fn run_job(job: &dyn DynJob, input: &[u8]) -> io::Result<Vec<u8>> {
        let meta = InputMeta {
            size: Some(input.len() as u64),
            content_type: None,
            source: "test".into(),
        };
        let mut reader = input;
        let mut out: Vec<u8> = Vec::new();
        let (_stop, stopping) = tokio::sync::watch::channel(false);
        job.run(JobIo {
            input: &mut reader,
            output: &mut out,
            meta: &meta,
            stopping,
        })
        .await?;
        Ok(out)
    }

    pub fn no_env(_: &str) -> Option<String> {
        None
    }
}
