//! Jobs: what a worker does between reading its input and writing its output.
//!
//! A job is a reader → writer transformation. To add one, write a file in this
//! folder with a type implementing [`Job`] and add a line to [`REGISTRY`].

use std::io;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::config::ConfigError;

pub mod copy;
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
    /// Size in bytes, as the Payload states it.
    pub size: u64,
    pub content_type: Option<String>,
    /// `s3://bucket/key` or `inline`.
    pub source: String,
}

/// The streams of one run, and what is known of the input.
pub struct JobIo<'a> {
    pub input: JobInput<'a>,
    pub output: JobOutput<'a>,
    pub meta: &'a InputMeta,
}

/// A job: implement this in a file of this folder and add a line to [`REGISTRY`].
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
}

impl<J: Job> DynJob for J {
    fn content_type(&self) -> &'static str {
        J::CONTENT_TYPE
    }

    fn run<'a>(&'a self, io: JobIo<'a>) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(Job::run(self, io))
    }
}

/// Environment lookup given to job constructors for their own settings.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

type Constructor = fn(Lookup<'_>) -> Result<Box<dyn DynJob>, ConfigError>;

fn boxed<J: Job>(get: Lookup<'_>) -> Result<Box<dyn DynJob>, ConfigError> {
    Ok(Box::new(J::create(get)?))
}

/// Every job, by the name `BATON_JOB` selects it with.
pub const REGISTRY: &[(&str, Constructor)] = &[
    ("copy", boxed::<copy::Copy>),
    ("word-count", boxed::<word_count::WordCount>),
    ("top-words", boxed::<top_words::TopWords>),
    ("sleep", boxed::<sleep::Sleep>),
];

pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|(name, _)| *name).collect()
}

/// Build the job `name`, reading its settings through `get`.
pub fn create(
    name: &str,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Box<dyn DynJob>, ConfigError> {
    let Some((_, constructor)) = REGISTRY.iter().find(|(n, _)| *n == name) else {
        return Err(ConfigError {
            variable: "BATON_JOB",
            message: format!("unknown job {name:?}; one of: {}", names().join(", ")),
        });
    };
    constructor(get)
}

/// A job setting from the environment: `default` when unset, an error naming the
/// variable when it does not parse or `valid` rejects it.
pub(crate) fn setting<T: std::str::FromStr>(
    get: Lookup<'_>,
    variable: &'static str,
    default: T,
    expected: &str,
    valid: impl Fn(&T) -> bool,
) -> Result<T, ConfigError> {
    let Some(text) = get(variable) else {
        return Ok(default);
    };
    text.parse::<T>()
        .ok()
        .filter(|v| valid(v))
        .ok_or_else(|| ConfigError {
            variable,
            message: format!("expected {expected}, got {text:?}"),
        })
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
            size: input.len() as u64,
            content_type: None,
            source: "test".into(),
        };
        let mut reader = input;
        let mut out: Vec<u8> = Vec::new();
        job.run(JobIo {
            input: &mut reader,
            output: &mut out,
            meta: &meta,
        })
        .await?;
        Ok(out)
    }

    pub fn no_env(_: &str) -> Option<String> {
        None
    }
}
