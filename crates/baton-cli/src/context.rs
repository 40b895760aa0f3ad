//! What every command shares: the settings, the SDK clients, the stack's outputs
//! (read once), execution names made ARNs, and AWS calls tried again while throttled.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sfn::error::{ProvideErrorMetadata, SdkError};

use baton_cli::history;
use baton_cli::progress::Progress;
use baton_cli::term::{self, Glyphs};

use crate::output::{Failure, usage};

/// The global options a context is made from.
pub struct Settings {
    pub region: Option<String>,
    pub profile: Option<String>,
    pub ascii: bool,
    pub stack: Option<String>,
    pub state_machine: Option<String>,
    /// The command line's definition, for a usage error's message.
    pub command: fn() -> clap::Command,
}

/// The clients, the settings, and the stack's outputs once read.
pub struct Ctx {
    pub sdk: SdkConfig,
    pub sfn: aws_sdk_sfn::Client,
    stack: Option<String>,
    state_machine: Option<String>,
    glyphs: Glyphs,
    command: fn() -> clap::Command,
    outputs: tokio::sync::OnceCell<HashMap<String, String>>,
}

impl Ctx {
    pub async fn new(settings: Settings) -> Ctx {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = settings.region {
            loader = loader.region(Region::new(region));
        }
        if let Some(profile) = settings.profile {
            loader = loader.profile_name(profile);
        }
        let sdk = loader.load().await;
        Ctx {
            sfn: aws_sdk_sfn::Client::new(&sdk),
            sdk,
            stack: settings.stack.filter(|s| !s.is_empty()),
            state_machine: settings.state_machine.filter(|s| !s.is_empty()),
            glyphs: term::glyphs(settings.ascii),
            command: settings.command,
            outputs: tokio::sync::OnceCell::new(),
        }
    }

    /// The stack's outputs (DescribeStacks), read once.
    pub async fn stack_output(&self, key: &str) -> Result<String, Failure> {
        let Some(stack) = &self.stack else {
            usage(
                (self.command)(),
                &format!(
                    "no stack: give --stack (or BATON_STACK){}",
                    if key == "PipelineStateMachineArn" {
                        ", or --state-machine (or BATON_STATE_MACHINE_ARN)"
                    } else {
                        ", or --bucket (or BATON_BUCKET)"
                    }
                ),
            );
        };
        let outputs = self
            .outputs
            .get_or_try_init(|| async {
                let cfn = aws_sdk_cloudformation::Client::new(&self.sdk);
                let described = call("DescribeStacks", || {
                    cfn.describe_stacks().stack_name(stack).send()
                })
                .await?;
                let found = described.stacks().first().ok_or_else(|| {
                    Failure::aws_text(format!("DescribeStacks: no stack {stack}"))
                })?;
                Ok::<_, Failure>(
                    found
                        .outputs()
                        .iter()
                        .filter_map(|o| Some((o.output_key()?.into(), o.output_value()?.into())))
                        .collect(),
                )
            })
            .await?;
        outputs.get(key).cloned().ok_or_else(|| {
            Failure::aws_text(format!(
                "stack {stack} has no output {key}: is it a Baton stack?"
            ))
        })
    }

    pub async fn state_machine(&self) -> Result<String, Failure> {
        match &self.state_machine {
            Some(arn) => Ok(arn.clone()),
            None => self.stack_output("PipelineStateMachineArn").await,
        }
    }

    /// An execution's ARN: as given, or a name of an execution of the state machine.
    pub async fn execution_arn(&self, given: &str) -> Result<String, Failure> {
        if given.starts_with("arn:") {
            return Ok(given.to_string());
        }
        let machine = self.state_machine().await?;
        history::execution_arn(given, Some(&machine)).ok_or_else(|| {
            Failure::local(format!(
                "{given}: not an execution ARN, and {machine} is not a state machine's ARN"
            ))
        })
    }

    pub fn progress(&self) -> Progress {
        Progress::new(std::env::var("BATON_TASK_LOGS").ok()).with_glyphs(self.glyphs)
    }
}

/// One AWS call, tried again after a growing, jittered pause while AWS answers that
/// it is throttling (beyond the SDK's own retries), up to 8 times.
pub async fn call<T, E, R, F, Fut>(operation: &str, mut f: F) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, R>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let mut attempt = 0;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < 8 && history::is_throttling(e.code()) => {
                let pause = history::backoff(
                    attempt,
                    Duration::from_millis(500),
                    Duration::from_secs(20),
                    history::jitter_unit(),
                );
                eprintln!(
                    "baton: {operation} throttled; trying again in {:.1} s",
                    pause.as_secs_f64()
                );
                tokio::time::sleep(pause).await;
                attempt += 1;
            }
            Err(e) => return Err(Failure::aws(operation, &e)),
        }
    }
}

/// Now, in seconds since the Unix epoch.
pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}
