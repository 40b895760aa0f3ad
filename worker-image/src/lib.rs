//! The Baton worker: reads its input Payload as a verified stream, runs a job
//! (reader → writer, bounded memory, or any program with `exec`), streams the
//! output to S3 and calls back.
//!
//! Your own Rust jobs: implement [`Job`] in your crate and hand them to
//! [`main_with`] from your `main`; you get the whole life cycle (verified input,
//! streamed output, heartbeats, signals, typed failures). `baton-worker` itself is
//! `main_with(jobs::builtin())`.

pub mod config;
pub mod exec;
pub mod jobs;
pub mod memory;
pub mod metadata;
pub mod metrics;
pub mod pipe;
pub mod progress;
pub mod run;
pub mod settings;

pub use config::WorkerConfig;
pub use jobs::{DynJob, InputMeta, Job, JobEntry, JobInput, JobIo, JobOutput, builtin, job};
pub use run::{ExitStatus, Stop};
pub use settings::{ConfigError, Lookup, setting};

/// A worker's whole `main`: JSON logs, the runtime, the command line, the
/// environment, the job, the report. Returns the exit code to end with.
///
/// ```no_run
/// use baton_worker::{job, jobs::copy::Copy};
/// fn main() -> std::process::ExitCode {
///     baton_worker::main_with([job::<Copy>("my-copy")])
/// }
/// ```
///
/// The command line: none, or `exec -- <command> [args…]` to run a program instead
/// of a job (the container's command, when the image's entrypoint is
/// `["baton-worker", "exec", "--"]`).
pub fn main_with(jobs: impl IntoIterator<Item = JobEntry>) -> std::process::ExitCode {
    large_buffers_from_the_system();
    baton::logs::init();
    let jobs: Vec<JobEntry> = jobs.into_iter().collect();
    let command = match command_line(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("{message}");
            return std::process::ExitCode::from(ExitStatus::BadConfig.code());
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    std::process::ExitCode::from(runtime.block_on(run::main(&jobs, command)).code())
}

/// `[]` → run a job; `exec [--] <command…>` → run that command.
pub fn command_line(mut args: impl Iterator<Item = String>) -> Result<Option<Vec<String>>, String> {
    match args.next().as_deref() {
        None => Ok(None),
        Some("exec") => {
            let mut rest: Vec<String> = args.collect();
            if rest.first().map(String::as_str) == Some("--") {
                rest.remove(0);
            }
            // An empty command here may still come from BATON_COMMAND.
            Ok((!rest.is_empty()).then_some(rest))
        }
        Some(other) => Err(format!(
            "baton-worker: unknown argument {other:?}; usage: baton-worker [exec -- <command> [args…]]"
        )),
    }
}

/// Transfer buffers (8 MiB ranges and parts, allocated and freed on different
/// threads) straight from the system and back to it when freed, so the process's
/// memory follows the bytes in flight. glibc would otherwise raise its mmap
/// threshold to the largest block freed and keep freed 8 MiB blocks in per-thread
/// arenas: measured on a 256 MiB read within an 80 MiB budget, 121 MiB peak RSS
/// instead of 86 MiB. (musl and other allocators: nothing to do.)
fn large_buffers_from_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> impl Iterator<Item = String> {
        list.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn the_command_line() {
        assert_eq!(command_line(args(&[])).unwrap(), None);
        assert_eq!(
            command_line(args(&["exec", "--", "python3", "-c", "x"])).unwrap(),
            Some(vec!["python3".into(), "-c".into(), "x".into()])
        );
        assert_eq!(
            command_line(args(&["exec", "sort"])).unwrap(),
            Some(vec!["sort".into()])
        );
        assert_eq!(command_line(args(&["exec", "--"])).unwrap(), None);
        assert!(command_line(args(&["run"])).is_err());
    }
}
