//! `sleep`: copy the input, then wait `BATON_SLEEP_SECONDS` (default 30) before
//! finishing the output. For trying out heartbeats, timeouts and interruption on
//! a job that takes a while with its output upload under way.

use std::io;
use std::time::Duration;

use futures::future::BoxFuture;

use super::{InputMeta, Job, JobInput, JobOutput, Lookup, setting};
use crate::config::ConfigError;

pub struct Sleep {
    duration: Duration,
}

impl Sleep {
    pub fn create(get: Lookup<'_>) -> Result<Box<dyn Job>, ConfigError> {
        let seconds = setting(get, "BATON_SLEEP_SECONDS", 30.0, "seconds", |v: &f64| {
            v.is_finite() && *v >= 0.0
        })?;
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
