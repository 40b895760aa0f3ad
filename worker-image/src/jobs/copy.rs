//! `copy`: the output is the input, byte for byte (benchmarks and tests use it).

use std::io;

use tokio::io::AsyncWriteExt;

use super::{Job, JobInput, JobIo, JobOutput, Lookup};
use crate::settings::ConfigError;

pub struct Copy;

/// Copy buffer: large enough for throughput, small enough not to matter.
const BUFFER: usize = 256 * 1024;

/// Copy `input` to `output` with a fixed buffer.
pub(crate) async fn stream(input: JobInput<'_>, output: JobOutput<'_>) -> io::Result<u64> {
    let mut reader = tokio::io::BufReader::with_capacity(BUFFER, input);
    let copied = tokio::io::copy_buf(&mut reader, output).await?;
    output.flush().await?;
    Ok(copied)
}

impl Job for Copy {
    const CONTENT_TYPE: &'static str = "application/octet-stream";

    fn create(_: Lookup<'_>) -> Result<Self, ConfigError> {
        Ok(Copy)
    }

    async fn run(&self, io: JobIo<'_>) -> io::Result<()> {
        stream(io.input, io.output).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::testing::{no_env, run_job};

    #[tokio::test]
    async fn copies_bytes() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let job = Copy::create(&no_env).unwrap();
        assert_eq!(run_job(&job, &data).await.unwrap(), data);
    }
}
