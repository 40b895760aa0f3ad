//! `sleep`: copy the input, then wait `BATON_SLEEP_SECONDS` (default 30) before
//! finishing the output. For trying out heartbeats, timeouts and interruption on
//! a job that takes a while with its output upload under way.

use std::io;
use std::time::Duration;

use futures::future::BoxFuture;

use super::{InputMeta, Job, JobInput, JobOutput, Lookup};
use crate::config::ConfigError;

pub struct Sleep {
    duration: Duration,
}

impl Sleep {
    pub fn create(get: Lookup<'_>) -> Result<Box<dyn Job>, ConfigError> {
        let seconds = match get("BATON_SLEEP_SECONDS") {
            None => 30.0,
            Some(s) => s
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| ConfigError {
                    variable: "BATON_SLEEP_SECONDS",
                    message: format!("expected seconds, got {s:?}"),
                })?,
        };
        Ok(Box::new(Sleep {
            duration: Duration::from_secs_f64(seconds),
        }))
    }
}

impl Job for Sleep {
    fn content_type(&self) -> &'static str {
        "application/octet-stream"
    }

    fn run<'a>(
        &'a self,
        input: JobInput<'a>,
        output: JobOutput<'a>,
        _: &'a InputMeta,
    ) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            super::copy::stream(input, output).await?;
            tokio::time::sleep(self.duration).await;
            Ok(())
        })
    }
}
