//! `baton`: start a pipeline and follow it with live progress, on AWS (standard AWS
//! configuration) or on the local stack (`AWS_ENDPOINT_URL`, see `.local/stack.env`).

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use aws_sdk_sfn::types::ExecutionStatus;
use clap::{Parser, Subcommand};
use serde_json::json;

use baton_cli::progress::{Progress, describe_output};

#[derive(Parser)]
#[command(name = "baton", about = "Start and follow Baton pipelines")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the pipeline on an input and follow it to its end.
    Run {
        /// `s3://bucket/key`, or a Payload as JSON (`{"inline": …}`).
        #[arg(long)]
        input: String,
        /// The state machine (the stack's PipelineStateMachineArn or SyncStateMachineArn).
        #[arg(long, env = "BATON_STATE_MACHINE_ARN")]
        state_machine: String,
        /// Execution name (default: run-<unix time>-<pid>).
        #[arg(long)]
        name: Option<String>,
    },
    /// Follow an execution that is already running.
    Follow { execution_arn: String },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let sdk = baton::aws::load_config().await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let result = match cli.command {
        Command::Run {
            input,
            state_machine,
            name,
        } => run(&sfn, &input, &state_machine, name).await,
        Command::Follow { execution_arn } => follow(&sfn, &execution_arn).await,
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("baton: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(
    sfn: &aws_sdk_sfn::Client,
    input: &str,
    state_machine: &str,
    name: Option<String>,
) -> anyhow::Result<bool> {
    let input_value = match serde_json::from_str::<serde_json::Value>(input) {
        Ok(v) if v.is_object() => v,
        _ => json!(input),
    };
    let name = name.unwrap_or_else(|| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        format!("run-{secs}-{}", std::process::id())
    });
    let started = sfn
        .start_execution()
        .state_machine_arn(state_machine)
        .name(&name)
        .input(json!({ "input": input_value }).to_string())
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(baton::error::display_chain(&e)))
        .context("StartExecution")?;
    println!("execution {name}\n  {}", started.execution_arn());
    follow(sfn, started.execution_arn()).await
}

/// One execution `baton follow` reads: the one asked for, or a step it started.
struct Followed {
    arn: String,
    progress: Progress,
    printed: HashSet<i64>,
    ended: bool,
}

impl Followed {
    fn new(arn: &str, progress: Progress) -> Followed {
        Followed {
            arn: arn.to_string(),
            progress,
            printed: HashSet::new(),
            ended: false,
        }
    }
}

/// Print what is new in each followed execution's history, following the nested
/// executions they start (their lines indented), until each has ended. Steps are
/// read before the executions that started them, so a step's last lines come
/// before its parent's "done".
async fn print_new_events(
    sfn: &aws_sdk_sfn::Client,
    followed: &mut Vec<Followed>,
) -> anyhow::Result<()> {
    let mut from = 0;
    loop {
        let len = followed.len();
        let mut started = Vec::new();
        for f in followed[from..len].iter_mut().rev().filter(|f| !f.ended) {
            let mut pages = sfn
                .get_execution_history()
                .execution_arn(&f.arn)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page
                    .map_err(|e| anyhow::anyhow!(baton::error::display_chain(&e)))
                    .context("GetExecutionHistory")?;
                for event in page.events() {
                    if f.printed.insert(event.id()) {
                        for line in f.progress.observe(event) {
                            println!("{line}");
                        }
                        if let Some(child) = f.progress.nested_to_follow(event) {
                            started.push(Followed::new(&child, f.progress.nested()));
                        }
                        f.ended |= Progress::ends(event);
                    }
                }
            }
        }
        if started.is_empty() {
            return Ok(());
        }
        from = len;
        followed.extend(started);
    }
}

async fn follow(sfn: &aws_sdk_sfn::Client, execution_arn: &str) -> anyhow::Result<bool> {
    let progress = Progress::new(std::env::var("BATON_TASK_LOGS").ok());
    let mut followed = vec![Followed::new(execution_arn, progress)];
    let began = Instant::now();
    loop {
        print_new_events(sfn, &mut followed).await?;
        let d = sfn
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!(baton::error::display_chain(&e)))
            .context("DescribeExecution")?;
        if matches!(
            d.status(),
            ExecutionStatus::Running | ExecutionStatus::PendingRedrive
        ) {
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        }
        // What happened between the last read and the end.
        print_new_events(sfn, &mut followed).await?;
        let took = began.elapsed().as_secs_f64();
        if d.status() == &ExecutionStatus::Succeeded {
            println!("SUCCEEDED in {took:.1} s");
            println!("output: {}", describe_output(d.output().unwrap_or("null")));
            return Ok(true);
        }
        println!("{} in {took:.1} s", d.status().as_str());
        println!("error: {}", d.error().unwrap_or("?"));
        println!("cause: {}", d.cause().unwrap_or(""));
        return Ok(false);
    }
}
