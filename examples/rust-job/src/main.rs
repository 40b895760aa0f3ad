//! A job of your own, in your own crate: `line-stats` reads text and writes a small
//! JSON report (lines, bytes, the longest line). Everything else (the verified
//! input, the streamed output, the callback, heartbeats, SIGTERM, typed failures)
//! comes from `baton_worker::main_with`, exactly as for Baton's built-in jobs.
//!
//! Build it, put the binary in an image as its entrypoint, and set
//! `BATON_JOB=line-stats` in the task definition.

use std::io;

use baton_worker::{ConfigError, Job, JobIo, Lookup, job, setting};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The report of the text read: what a user's own job computes.
pub struct LineStats {
    /// `LINE_STATS_MAX_LINE` (default 1 MiB): longer lines fail the job.
    max_line: usize,
}

impl Job for LineStats {
    const CONTENT_TYPE: &'static str = "application/json";

    fn create(get: Lookup<'_>) -> Result<Self, ConfigError> {
        let max_line = setting(
            get,
            "LINE_STATS_MAX_LINE",
            1 << 20,
            "a positive number of bytes",
            |n: &usize| *n > 0,
        )?;
        Ok(LineStats { max_line })
    }

    async fn run(&self, io: JobIo<'_>) -> io::Result<()> {
        let JobIo { input, output, .. } = io;
        let mut reader = BufReader::new(input);
        let (mut lines, mut bytes, mut longest) = (0u64, 0u64, 0usize);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).await?;
            if n == 0 {
                break;
            }
            if n > self.max_line {
                // Any io::Error is the job's failure: Baton.WorkerError, with this message.
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("line {} has {n} bytes, over LINE_STATS_MAX_LINE", lines + 1),
                ));
            }
            lines += 1;
            bytes += n as u64;
            longest = longest.max(line.strip_suffix(b"\n").unwrap_or(&line).len());
        }
        let report = serde_json::json!({"lines": lines, "bytes": bytes, "longestLine": longest});
        output.write_all(report.to_string().as_bytes()).await?;
        output.flush().await
    }
}

fn main() -> std::process::ExitCode {
    // Your jobs, and Baton's built-in ones if you want them too.
    let mut jobs = vec![job::<LineStats>("line-stats")];
    jobs.extend(baton_worker::builtin());
    baton_worker::main_with(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_worker::{DynJob, InputMeta};

    #[tokio::test]
    async fn counts_lines_bytes_and_the_longest() {
        let job = LineStats::create(&|_| None).unwrap();
        let input = b"one\nthree\n\nfive5\n";
        let meta = InputMeta {
            size: Some(input.len() as u64),
            content_type: None,
            source: "test".into(),
        };
        let (mut reader, mut out) = (&input[..], Vec::new());
        let (_stop, stopping) = tokio::sync::watch::channel(false);
        DynJob::run(
            &job,
            JobIo {
                input: &mut reader,
                output: &mut out,
                meta: &meta,
                stopping,
            },
        )
        .await
        .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            report,
            serde_json::json!({"lines": 4, "bytes": 17, "longestLine": 5})
        );
    }
}
