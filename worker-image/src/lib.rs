//! The Baton worker: reads its input Payload as a verified stream, runs a job
//! (reader → writer, bounded memory), streams the output to S3 and calls back.

pub mod config;
pub mod jobs;
pub mod metadata;
pub mod pipe;
pub mod progress;
pub mod run;

pub use config::WorkerConfig;
pub use run::{ExitStatus, Stop};
