//! `digest`: reads the input to its end and writes `{"bytes": N, "sha256": "…"}`.
//! Checks an object (its size and hash, read the way every job reads), and is the
//! download half of the throughput benchmark: nothing but reading.

use std::io;

use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Job, JobIo, Lookup};
use crate::settings::ConfigError;

pub struct Digest;

const BUFFER: usize = 256 * 1024;

impl Job for Digest {
    const CONTENT_TYPE: &'static str = "application/json";

    fn create(_: Lookup<'_>) -> Result<Self, ConfigError> {
        Ok(Digest)
    }

    async fn run(&self, io: JobIo<'_>) -> io::Result<()> {
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        let mut buf = vec![0u8; BUFFER];
        loop {
            let n = io.input.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            bytes += n as u64;
        }
        let sha256 = hex::encode(hasher.finalize());
        let out = serde_json::json!({"bytes": bytes, "sha256": sha256});
        io.output.write_all(out.to_string().as_bytes()).await?;
        io.output.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::testing::{no_env, run_job};

    #[tokio::test]
    async fn reports_size_and_sha256() {
        let job = Digest::create(&no_env).unwrap();
        let out = run_job(&job, b"abc").await.unwrap();
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["bytes"], 3);
        assert_eq!(
            value["sha256"],
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
