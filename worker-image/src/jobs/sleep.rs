//! `sleep`: copy the input, then wait `BATON_SLEEP_SECONDS` (default 30) before
//! finishing the output. For trying out heartbeats, timeouts and interruption on
//! a job that takes a while with its output upload under way.

use std::io;
use std::time::Duration;

use super::{Job, JobIo, Lookup, setting};
use crate::settings::ConfigError;

pub struct Sleep {
    duration: Duration,
}

impl Job for Sleep {
    const CONTENT_TYPE: &'static str = "application/octet-stream";

    fn create(get: Lookup<'_>) -> Result<Self, ConfigError> {
        let seconds = setting(get, "BATON_SLEEP_SECONDS", 30.0, "seconds", |v: &f64| {
            v.is_finite() && *v >= 0.0
        })?;
        Ok(Sleep {
            duration: Duration::from_secs_f64(seconds),
        })
    }

    async fn run(&self, io: JobIo<'_>) -> io::Result<()> {
        let JobIo { input, output, .. } = io;
        super::copy::stream(input, output).await?;
        tokio::time::sleep(self.duration).await;
        Ok(())
    }
}
