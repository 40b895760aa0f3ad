//! `baton`: start, follow, list, stop and redrive Baton pipelines and read their
//! tasks' logs, on AWS (standard AWS configuration) or on the local stack
//! (`AWS_ENDPOINT_URL`, see `.local/stack.env`). docs/cli.md has the whole story.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use baton_cli::exit;

// The commands and what they share, private to the binary (the library holds the
// pure parts): a command may use the context and the output, and `follow` (which
// `run` and `redrive` end with, and whose history reading `logs` and `ls` reuse);
// the context and the output use no command.
mod commands;
mod context;
mod output;

use commands::{follow, logs, ls, redrive, run, stop};
use context::{Ctx, Settings};

#[derive(Parser)]
#[command(
    name = "baton",
    version,
    about = "Start, follow, list, stop and redrive Baton pipelines, and read their tasks' logs",
    after_help = exit::TABLE
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print one JSON document on stdout at the end (progress stays on stderr).
    #[arg(long, global = true)]
    json: bool,
    /// The AWS region (else the standard configuration's: AWS_REGION, the profile).
    #[arg(long, global = true)]
    region: Option<String>,
    /// The AWS profile (else AWS_PROFILE, or the default).
    #[arg(long, global = true)]
    profile: Option<String>,
    /// ASCII marks (> ok x) instead of ▶ ✓ ✗ (also chosen for a non-UTF-8 locale or TERM=dumb).
    #[arg(long, global = true)]
    ascii: bool,
    /// The Baton stack (CloudFormation) whose outputs name the pipeline and the bucket.
    #[arg(long, global = true, env = "BATON_STACK")]
    stack: Option<String>,
    /// The state machine to run or list, over the stack's PipelineStateMachineArn.
    #[arg(long, global = true, env = "BATON_STATE_MACHINE_ARN")]
    state_machine: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Start the pipeline on an input and follow it to its end.
    Run {
        /// A local file (uploaded to the stack's bucket under inbox/<name> first),
        /// s3://bucket/key, or a Payload as JSON ({"inline": …}).
        #[arg(required_unless_present = "input_flag")]
        input: Option<String>,
        /// The same as INPUT (kept for scripts written for older versions).
        #[arg(
            long = "input",
            value_name = "INPUT",
            hide = true,
            conflicts_with = "input"
        )]
        input_flag: Option<String>,
        /// Execution name (default: run-<unix time>-<pid>).
        #[arg(long)]
        name: Option<String>,
        /// The bucket a local file is uploaded to, over the stack's BucketName.
        #[arg(long, env = "BATON_BUCKET")]
        bucket: Option<String>,
        /// Start it and print its ARN, without following it.
        #[arg(long)]
        detach: bool,
    },
    /// Follow an execution that is already running (ARN, or name with --stack).
    Follow { execution: String },
    /// List recent executions: name, status, start, duration and Baton.* error.
    Ls {
        /// How many, newest first (1 to 1000).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i32).range(1..=1000))]
        max: i32,
        /// Only executions with this status.
        #[arg(long, value_enum)]
        status: Option<ls::StatusFilter>,
    },
    /// The logs of every ECS task of an execution and of its steps.
    Logs {
        execution: String,
        /// Where the logs are: auto is the local stack's files when its settings are
        /// in the environment (BATON_TASK_LOGS, AWS_ENDPOINT_URL), else CloudWatch Logs.
        #[arg(long, value_enum, default_value = "auto")]
        source: logs::LogsFrom,
    },
    /// Stop a running execution (StopExecution): it ends ABORTED.
    Stop {
        execution: String,
        /// Why, recorded with the execution.
        #[arg(long)]
        cause: Option<String>,
    },
    /// Redrive a failed, timed-out or aborted execution from its failed step, then follow it.
    Redrive {
        execution: String,
        /// Redrive it and print its ARN, without following it.
        #[arg(long)]
        detach: bool,
        /// Redrive a pipeline's step on its own (the pipeline stays failed, and a later
        /// redrive of the pipeline runs the step again beside it): refused without this.
        #[arg(long)]
        step: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let Cli {
        command,
        json,
        region,
        profile,
        ascii,
        stack,
        state_machine,
    } = Cli::parse();
    let ctx = Ctx::new(Settings {
        region,
        profile,
        ascii,
        stack,
        state_machine,
        command: Cli::command,
    })
    .await;
    let result = match &command {
        Command::Run {
            input,
            input_flag,
            name,
            bucket,
            detach,
        } => {
            let input = input.clone().or_else(|| input_flag.clone());
            let input =
                input.unwrap_or_else(|| output::usage(Cli::command(), "baton run needs an INPUT"));
            run::run(&ctx, &input, name.clone(), bucket.clone(), *detach).await
        }
        Command::Follow { execution } => {
            let arn = ctx.execution_arn(execution).await;
            match arn {
                Ok(arn) => follow::follow(&ctx, &arn, 0).await,
                Err(e) => Err(e),
            }
        }
        Command::Ls { max, status } => ls::ls(&ctx, *max, *status).await,
        Command::Logs { execution, source } => match ctx.execution_arn(execution).await {
            Ok(arn) => logs::logs(&ctx, &arn, *source).await,
            Err(e) => Err(e),
        },
        Command::Stop { execution, cause } => match ctx.execution_arn(execution).await {
            Ok(arn) => stop::stop(&ctx, &arn, cause.clone()).await,
            Err(e) => Err(e),
        },
        Command::Redrive {
            execution,
            detach,
            step,
        } => match ctx.execution_arn(execution).await {
            Ok(arn) => redrive::redrive(&ctx, &arn, *detach, *step).await,
            Err(e) => Err(e),
        },
    };
    ExitCode::from(output::print(result, json))
}
