//! `baton`: start, follow, list, stop and redrive Baton pipelines and read their
//! tasks' logs, on AWS (standard AWS configuration) or on the local stack
//! (`AWS_ENDPOINT_URL`, see `.local/stack.env`). docs/cli.md has the whole story.

use std::collections::HashMap;
use std::future::Future;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sfn::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent, HistoryEventType};
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};

use baton_cli::exit;
use baton_cli::history::{self, HistoryCursor};
use baton_cli::progress::{Progress, describe_output_on_one_line};
use baton_cli::term::{self, Glyphs};

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
        status: Option<StatusFilter>,
    },
    /// The logs of every ECS task of an execution and of its steps.
    Logs {
        execution: String,
        /// Where the logs are: auto is the local stack's files when its settings are
        /// in the environment (BATON_TASK_LOGS, AWS_ENDPOINT_URL), else CloudWatch Logs.
        #[arg(long, value_enum, default_value = "auto")]
        source: LogsFrom,
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

#[derive(Clone, Copy, ValueEnum)]
enum LogsFrom {
    Auto,
    Files,
    Cloudwatch,
}

#[derive(Clone, Copy, ValueEnum)]
enum StatusFilter {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
    PendingRedrive,
}

impl StatusFilter {
    fn api(self) -> ExecutionStatus {
        match self {
            StatusFilter::Running => ExecutionStatus::Running,
            StatusFilter::Succeeded => ExecutionStatus::Succeeded,
            StatusFilter::Failed => ExecutionStatus::Failed,
            StatusFilter::TimedOut => ExecutionStatus::TimedOut,
            StatusFilter::Aborted => ExecutionStatus::Aborted,
            StatusFilter::PendingRedrive => ExecutionStatus::PendingRedrive,
        }
    }
}

/// Why a command could not do its work, and the exit code that says so.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn aws(operation: &str, err: &dyn std::error::Error) -> Failure {
        Failure {
            code: exit::AWS_ERROR,
            message: format!("{operation}: {}", baton::error::display_chain(err)),
        }
    }

    fn aws_text(message: String) -> Failure {
        Failure {
            code: exit::AWS_ERROR,
            message,
        }
    }

    fn local(message: String) -> Failure {
        Failure {
            code: exit::LOCAL_ERROR,
            message,
        }
    }
}

/// What a command did: its exit code, its JSON document, and its line for stdout.
struct Outcome {
    code: u8,
    document: Value,
    line: String,
}

/// A usage error found after parsing (none of the settings a command needs): clap's
/// own message and exit code 2.
fn usage(message: &str) -> ! {
    Cli::command()
        .error(clap::error::ErrorKind::MissingRequiredArgument, message)
        .exit()
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let json_out = cli.json;
    let ctx = Ctx::new(&cli).await;
    let result = match &cli.command {
        Command::Run {
            input,
            input_flag,
            name,
            bucket,
            detach,
        } => {
            let input = input.clone().or_else(|| input_flag.clone());
            let input = input.unwrap_or_else(|| usage("baton run needs an INPUT"));
            run(&ctx, &input, name.clone(), bucket.clone(), *detach).await
        }
        Command::Follow { execution } => {
            let arn = ctx.execution_arn(execution).await;
            match arn {
                Ok(arn) => follow(&ctx, &arn, 0).await,
                Err(e) => Err(e),
            }
        }
        Command::Ls { max, status } => ls(&ctx, *max, *status).await,
        Command::Logs { execution, source } => match ctx.execution_arn(execution).await {
            Ok(arn) => logs(&ctx, &arn, *source).await,
            Err(e) => Err(e),
        },
        Command::Stop { execution, cause } => match ctx.execution_arn(execution).await {
            Ok(arn) => stop(&ctx, &arn, cause.clone()).await,
            Err(e) => Err(e),
        },
        Command::Redrive {
            execution,
            detach,
            step,
        } => match ctx.execution_arn(execution).await {
            Ok(arn) => redrive(&ctx, &arn, *detach, *step).await,
            Err(e) => Err(e),
        },
    };
    let (code, document, line) = match result {
        Ok(o) => (o.code, o.document, Some(o.line)),
        Err(f) => {
            eprintln!("baton: {}", f.message);
            let kind = if f.code == exit::AWS_ERROR {
                "aws"
            } else {
                "local"
            };
            (
                f.code,
                json!({"error": {"kind": kind, "message": f.message, "exitCode": f.code}}),
                None,
            )
        }
    };
    let printed = if json_out {
        Some(document.to_string())
    } else {
        line
    };
    if let Some(text) = printed {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        if writeln!(stdout, "{text}")
            .and_then(|_| stdout.flush())
            .is_err()
        {
            return ExitCode::from(exit::LOCAL_ERROR);
        }
    }
    ExitCode::from(code)
}

/// The clients, the settings, and the stack's outputs once read.
struct Ctx {
    sdk: SdkConfig,
    sfn: aws_sdk_sfn::Client,
    stack: Option<String>,
    state_machine: Option<String>,
    glyphs: Glyphs,
    outputs: tokio::sync::OnceCell<HashMap<String, String>>,
}

impl Ctx {
    async fn new(cli: &Cli) -> Ctx {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = &cli.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(profile) = &cli.profile {
            loader = loader.profile_name(profile);
        }
        let sdk = loader.load().await;
        Ctx {
            sfn: aws_sdk_sfn::Client::new(&sdk),
            sdk,
            stack: cli.stack.clone().filter(|s| !s.is_empty()),
            state_machine: cli.state_machine.clone().filter(|s| !s.is_empty()),
            glyphs: term::glyphs(cli.ascii),
            outputs: tokio::sync::OnceCell::new(),
        }
    }

    /// The stack's outputs (DescribeStacks), read once.
    async fn stack_output(&self, key: &str) -> Result<String, Failure> {
        let Some(stack) = &self.stack else {
            usage(&format!(
                "no stack: give --stack (or BATON_STACK){}",
                if key == "PipelineStateMachineArn" {
                    ", or --state-machine (or BATON_STATE_MACHINE_ARN)"
                } else {
                    ", or --bucket (or BATON_BUCKET)"
                }
            ));
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

    async fn state_machine(&self) -> Result<String, Failure> {
        match &self.state_machine {
            Some(arn) => Ok(arn.clone()),
            None => self.stack_output("PipelineStateMachineArn").await,
        }
    }

    /// An execution's ARN: as given, or a name of an execution of the state machine.
    async fn execution_arn(&self, given: &str) -> Result<String, Failure> {
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

    fn progress(&self) -> Progress {
        Progress::new(std::env::var("BATON_TASK_LOGS").ok()).with_glyphs(self.glyphs)
    }
}

/// One AWS call, tried again after a growing, jittered pause while AWS answers that
/// it is throttling (beyond the SDK's own retries), up to 8 times.
async fn call<T, E, R, F, Fut>(operation: &str, mut f: F) -> Result<T, Failure>
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

fn time(t: &DateTime) -> String {
    t.fmt(Format::DateTime).unwrap_or_default()
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

// ------------------------------------------------------------------------- run

async fn run(
    ctx: &Ctx,
    input: &str,
    name: Option<String>,
    bucket: Option<String>,
    detach: bool,
) -> Result<Outcome, Failure> {
    let state_machine = ctx.state_machine().await?;
    let input_value = if input.starts_with("s3://") {
        json!(input)
    } else if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(input) {
        v
    } else {
        let path = std::path::Path::new(input);
        if !path.is_file() {
            return Err(Failure::local(format!(
                "{input}: no such file (and neither s3://bucket/key nor a JSON Payload)"
            )));
        }
        let bucket = match bucket.filter(|b| !b.is_empty()) {
            Some(b) => b,
            None => ctx.stack_output("BucketName").await?,
        };
        json!(upload(ctx, path, &bucket).await?)
    };
    let name = name.unwrap_or_else(|| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        format!("run-{secs}-{}", std::process::id())
    });
    let body = json!({ "input": input_value }).to_string();
    let started = call("StartExecution", || {
        ctx.sfn
            .start_execution()
            .state_machine_arn(&state_machine)
            .name(&name)
            .input(&body)
            .send()
    })
    .await?;
    let arn = started.execution_arn().to_string();
    eprintln!("execution {name}\n  {arn}");
    if detach {
        return Ok(Outcome {
            code: exit::SUCCEEDED,
            document: json!({"executionArn": arn, "name": name, "status": "RUNNING",
                             "startDate": time(started.start_date())}),
            line: arn,
        });
    }
    follow(ctx, &arn, 0).await
}

/// Upload a local file to `s3://bucket/inbox/<file name>`; its URI.
async fn upload(ctx: &Ctx, path: &std::path::Path, bucket: &str) -> Result<String, Failure> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "input".into());
    let key = format!("inbox/{file_name}");
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Failure::local(format!("{}: {e}", path.display())))?;
    let store = baton::store::Store::new(baton::aws::s3_client(&ctx.sdk));
    let pointer = store
        .put(bucket, &key, file, None)
        .await
        .map_err(|e| Failure::aws_text(format!("uploading {}: {e}", path.display())))?;
    eprintln!(
        "uploaded {} to {} ({} bytes)",
        path.display(),
        pointer.uri(),
        pointer.size
    );
    Ok(pointer.uri())
}

// ---------------------------------------------------------------------- follow

/// One execution `follow` reads: the one asked for, or a step it started.
struct Followed {
    arn: String,
    progress: Progress,
    cursor: HistoryCursor,
    ended: bool,
}

/// Its new events: newest first, page after page while every event is new
/// ([`HistoryCursor`]).
async fn new_events(ctx: &Ctx, f: &mut Followed) -> Result<Vec<HistoryEvent>, Failure> {
    let mut token: Option<String> = None;
    loop {
        let page = call("GetExecutionHistory", || {
            ctx.sfn
                .get_execution_history()
                .execution_arn(&f.arn)
                .reverse_order(true)
                .max_results(HISTORY_PAGE)
                .set_next_token(token.clone())
                .send()
        })
        .await;
        let page = match page {
            Ok(page) => page,
            Err(e) => {
                f.cursor.abandon();
                return Err(e);
            }
        };
        if !f.cursor.take_page(page.events(), page.next_token()) {
            return Ok(f.cursor.finish());
        }
        token = page.next_token().map(String::from);
    }
}

/// Events per GetExecutionHistory page: a poll costs one call while fewer arrive.
const HISTORY_PAGE: i32 = 100;

/// Print what is new in each followed execution's history, following the nested
/// executions they start (their lines indented), until each has ended. Steps are
/// read before the executions that started them, and a step's last events are read
/// again before its parent's line for its end, so that a step's lines come before
/// its parent's "done". Whether anything was new.
async fn print_new_events(ctx: &Ctx, followed: &mut Vec<Followed>) -> Result<bool, Failure> {
    let mut any = false;
    let mut from = 0;
    loop {
        let len = followed.len();
        let mut started = Vec::new();
        for i in (from..len).rev() {
            if followed[i].ended {
                continue;
            }
            for event in new_events(ctx, &mut followed[i]).await? {
                any = true;
                let step = history::step_ended(&event)
                    .and_then(|arn| followed.iter().position(|f| f.arn == arn && !f.ended));
                if let Some(j) = step {
                    for step_event in new_events(ctx, &mut followed[j]).await? {
                        show(&mut followed[j], &step_event, &mut started);
                    }
                }
                show(&mut followed[i], &event, &mut started);
            }
        }
        if started.is_empty() {
            return Ok(any);
        }
        from = len;
        followed.extend(started);
    }
}

/// Print an event's lines; note the step it starts, and whether it ends `f`.
fn show(f: &mut Followed, event: &HistoryEvent, started: &mut Vec<Followed>) {
    for line in f.progress.observe(event) {
        eprintln!("{line}");
    }
    if let Some(child) = f.progress.nested_to_follow(event) {
        started.push(Followed {
            arn: child,
            progress: f.progress.nested(),
            cursor: HistoryCursor::after(0),
            ended: false,
        });
    }
    if event.r#type() == &HistoryEventType::ExecutionRedriven {
        f.ended = false;
    }
    f.ended |= Progress::ends(event);
}

/// Follow an execution from the event after `after_id` to its end.
async fn follow(ctx: &Ctx, arn: &str, after_id: i64) -> Result<Outcome, Failure> {
    let mut followed = vec![Followed {
        arn: arn.to_string(),
        progress: ctx.progress(),
        cursor: HistoryCursor::after(after_id),
        ended: false,
    }];
    let began = Instant::now();
    let mut idle = 0;
    loop {
        let new = print_new_events(ctx, &mut followed).await?;
        idle = if new { 0 } else { idle + 1 };
        // The end is in the history; an idle poll also asks, in case an endpoint
        // records no end event.
        if followed[0].ended || !new {
            let d = call("DescribeExecution", || {
                ctx.sfn.describe_execution().execution_arn(arn).send()
            })
            .await?;
            if !matches!(
                d.status(),
                ExecutionStatus::Running | ExecutionStatus::PendingRedrive
            ) {
                // What happened between the last read and the end.
                print_new_events(ctx, &mut followed).await?;
                return Ok(ended(ctx, &d, began.elapsed().as_secs_f64()).await);
            }
            followed[0].ended = false;
        }
        tokio::time::sleep(history::poll_pause(
            idle,
            Duration::from_millis(300),
            Duration::from_secs(2),
        ))
        .await;
    }
}

/// The outcome of an execution that has ended.
async fn ended(
    ctx: &Ctx,
    d: &aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput,
    took: f64,
) -> Outcome {
    let status = d.status().as_str().to_string();
    let start = d.start_date().as_secs_f64();
    let stop = d.stop_date().map(|t| t.as_secs_f64());
    let mut document = json!({
        "executionArn": d.execution_arn(),
        "name": d.name(),
        "status": status,
        "startDate": time(d.start_date()),
        "stopDate": d.stop_date().map(time),
        "durationSeconds": history::duration(start, stop, now_secs()),
    });
    eprintln!("{status} in {took:.1} s");
    if d.status() == &ExecutionStatus::Succeeded {
        let output = d.output().unwrap_or("null");
        eprintln!("output: {}", describe_output_on_one_line(output));
        let value: Value = serde_json::from_str(output).unwrap_or_else(|_| json!(output));
        document["output"] = value.clone();
        return Outcome {
            code: exit::SUCCEEDED,
            document,
            line: value.to_string(),
        };
    }
    let step_error = match history::baton_error_in(d.error(), d.cause()) {
        Some(e) => Some(e),
        None => {
            let failures = failed_tasks(ctx, d.execution_arn()).await;
            history::step_error(d.error(), d.cause(), &failures)
        }
    };
    eprintln!("error: {}", d.error().unwrap_or("?"));
    eprintln!("cause: {}", d.cause().unwrap_or(""));
    if step_error.as_deref() != d.error() {
        eprintln!("step error: {}", step_error.as_deref().unwrap_or("?"));
    }
    document["error"] = json!(d.error());
    document["cause"] = json!(d.cause());
    document["stepError"] = json!(step_error);
    Outcome {
        code: exit::for_status(&status),
        line: json!({"status": status, "error": d.error(), "cause": d.cause(), "stepError": step_error})
            .to_string(),
        document,
    }
}

/// The TaskFailed events' error and cause in the last 1,000 events of a history
/// (none if it cannot be read).
async fn failed_tasks(ctx: &Ctx, arn: &str) -> Vec<(Option<String>, Option<String>)> {
    let page = call("GetExecutionHistory", || {
        ctx.sfn
            .get_execution_history()
            .execution_arn(arn)
            .reverse_order(true)
            .max_results(1000)
            .send()
    })
    .await;
    match page {
        Ok(page) => {
            let mut events = page.events().to_vec();
            events.sort_by_key(|e| e.id());
            history::task_failures(&events)
        }
        Err(_) => Vec::new(),
    }
}

// -------------------------------------------------------------------------- ls

async fn ls(ctx: &Ctx, max: i32, status: Option<StatusFilter>) -> Result<Outcome, Failure> {
    let machine = ctx.state_machine().await?;
    let listed = call("ListExecutions", || {
        ctx.sfn
            .list_executions()
            .state_machine_arn(&machine)
            .max_results(max)
            .set_status_filter(status.map(StatusFilter::api))
            .send()
    })
    .await?;
    let mut rows = Vec::new();
    let mut lines = vec![format!(
        "{:<40} {:<15} {:<20} {:>10}  ERROR",
        "NAME", "STATUS", "START", "DURATION"
    )];
    let now = now_secs();
    for e in listed.executions() {
        let status = e.status().as_str();
        let start = e.start_date().as_secs_f64();
        let stop = e.stop_date().map(|t| t.as_secs_f64());
        let took = history::duration(start, stop, now);
        let error = if matches!(status, "FAILED" | "TIMED_OUT" | "ABORTED") {
            let d = call("DescribeExecution", || {
                ctx.sfn
                    .describe_execution()
                    .execution_arn(e.execution_arn())
                    .send()
            })
            .await?;
            match history::baton_error_in(d.error(), d.cause()) {
                Some(found) => Some(found),
                None if status == "FAILED" => {
                    let failures = failed_tasks(ctx, e.execution_arn()).await;
                    history::step_error(d.error(), d.cause(), &failures)
                }
                None => d.error().map(String::from),
            }
        } else {
            None
        };
        let start_text = time(e.start_date());
        lines.push(format!(
            "{:<40} {:<15} {:<20} {:>9.1}s  {}",
            e.name(),
            status,
            // To the second: the table's column.
            time(&DateTime::from_secs(e.start_date().secs())),
            took,
            error.as_deref().unwrap_or("")
        ));
        rows.push(json!({
            "name": e.name(),
            "executionArn": e.execution_arn(),
            "status": status,
            "startDate": start_text,
            "stopDate": e.stop_date().map(time),
            "durationSeconds": took,
            "error": error,
        }));
    }
    Ok(Outcome {
        code: exit::SUCCEEDED,
        document: json!({"stateMachineArn": machine, "executions": rows}),
        line: lines.join("\n"),
    })
}

// ------------------------------------------------------------------------ logs

/// Every event of a history, oldest first.
async fn whole_history(ctx: &Ctx, arn: &str) -> Result<Vec<HistoryEvent>, Failure> {
    let mut f = Followed {
        arn: arn.to_string(),
        progress: Progress::new(None),
        cursor: HistoryCursor::after(0),
        ended: false,
    };
    new_events(ctx, &mut f).await
}

/// Where a task's logs are: files on the local stack, CloudWatch Logs on AWS.
enum LogSource {
    /// `{task_id}` replaced.
    Files(String),
    CloudWatch,
}

impl LogSource {
    /// Files where the local stack's settings say so: `BATON_TASK_LOGS` (its
    /// stack.env), else, with `AWS_ENDPOINT_URL` set, `<BATON_LOCAL_STATE or
    /// .local>/logs/<task id>.log` (local/fargate writes them there).
    fn from_env(from: LogsFrom) -> LogSource {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if matches!(from, LogsFrom::Cloudwatch) {
            return LogSource::CloudWatch;
        }
        if let Some(template) = var("BATON_TASK_LOGS") {
            return LogSource::Files(template);
        }
        if var("AWS_ENDPOINT_URL").is_some() || matches!(from, LogsFrom::Files) {
            let state = var("BATON_LOCAL_STATE").unwrap_or_else(|| ".local".into());
            return LogSource::Files(format!("{state}/logs/{{task_id}}.log"));
        }
        LogSource::CloudWatch
    }
}

async fn logs(ctx: &Ctx, arn: &str, from: LogsFrom) -> Result<Outcome, Failure> {
    let source = LogSource::from_env(from);
    let mut queue = vec![arn.to_string()];
    let mut tasks = Vec::new();
    while let Some(execution) = queue.pop() {
        let events = whole_history(ctx, &execution).await?;
        let found = history::started(&events);
        let name = execution
            .rsplit(':')
            .next()
            .unwrap_or(&execution)
            .to_string();
        tasks.extend(found.tasks.into_iter().map(|t| (name.clone(), t)));
        // Depth first, in order.
        queue.extend(found.executions.into_iter().rev());
    }
    let ecs = aws_sdk_ecs::Client::new(&ctx.sdk);
    let mut definitions = Definitions::new();
    let mut out = Vec::new();
    let mut text = Vec::new();
    for (execution, task) in tasks {
        let state = task.state.clone().unwrap_or_default();
        let mut entry = json!({
            "execution": execution,
            "state": state,
            "taskArn": task.arn,
            "taskId": task.id(),
        });
        let read = match &source {
            LogSource::Files(template) => {
                let path = template.replace("{task_id}", task.id());
                entry["source"] = json!(path);
                match std::fs::read_to_string(&path) {
                    Ok(body) => Ok(body.lines().map(String::from).collect::<Vec<_>>()),
                    Err(e) => Err(format!("{path}: {e}")),
                }
            }
            LogSource::CloudWatch => {
                match cloudwatch_lines(ctx, &ecs, &task, &mut definitions).await? {
                    (streams, Ok(lines)) => {
                        entry["source"] = json!(streams);
                        Ok(lines)
                    }
                    (streams, Err(e)) => {
                        entry["source"] = json!(streams);
                        Err(e)
                    }
                }
            }
        };
        let source_text = match &entry["source"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        text.push(format!(
            "==> {execution} {state} task {} ({source_text})",
            task.id()
        ));
        match read {
            Ok(lines) => {
                text.extend(lines.iter().cloned());
                entry["lines"] = json!(lines);
            }
            Err(e) => {
                text.push(format!("(no log: {e})"));
                entry["lines"] = json!([]);
                entry["error"] = json!(e);
            }
        }
        out.push(entry);
    }
    if out.is_empty() {
        eprintln!("no ECS task in {arn} or its steps");
    }
    Ok(Outcome {
        code: exit::SUCCEEDED,
        document: json!({"executionArn": arn, "tasks": out}),
        line: text.join("\n"),
    })
}

/// A container of a task definition that logs with the `awslogs` driver.
#[derive(Clone)]
struct AwsLogs {
    container: String,
    group: String,
    prefix: Option<String>,
    region: Option<String>,
}

/// The `awslogs` containers of each task definition read so far.
type Definitions = HashMap<String, Vec<AwsLogs>>;

/// A task's lines in CloudWatch Logs: its task definition's `awslogs` containers
/// (DescribeTaskDefinition; DescribeTasks when the history does not name the
/// definition), each container's stream `<prefix>/<container>/<task id>` read from
/// its head (GetLogEvents). The streams, and the lines or why there are none.
async fn cloudwatch_lines(
    ctx: &Ctx,
    ecs: &aws_sdk_ecs::Client,
    task: &history::EcsTask,
    definitions: &mut Definitions,
) -> Result<(Vec<String>, Result<Vec<String>, String>), Failure> {
    let definition = match &task.task_definition {
        Some(d) => d.clone(),
        None => {
            // arn:aws:ecs:<region>:<account>:task/<cluster>/<id>
            let cluster = task.arn.split('/').nth(1).unwrap_or_default().to_string();
            let described = call("DescribeTasks", || {
                ecs.describe_tasks()
                    .cluster(&cluster)
                    .tasks(&task.arn)
                    .send()
            })
            .await?;
            match described
                .tasks()
                .first()
                .and_then(|t| t.task_definition_arn())
            {
                Some(d) => d.to_string(),
                None => {
                    return Ok((
                        vec![],
                        Err("ECS no longer describes the task (kept about an hour after it stops), and the history names no task definition".into()),
                    ));
                }
            }
        }
    };
    if !definitions.contains_key(&definition) {
        let described = call("DescribeTaskDefinition", || {
            ecs.describe_task_definition()
                .task_definition(&definition)
                .send()
        })
        .await?;
        let containers = described
            .task_definition()
            .map(|d| d.container_definitions())
            .unwrap_or_default()
            .iter()
            .filter_map(|c| {
                let config = c.log_configuration()?;
                if config.log_driver().as_str() != "awslogs" {
                    return None;
                }
                let options = config.options()?;
                let group = options.get("awslogs-group")?.clone();
                Some(AwsLogs {
                    container: c.name().unwrap_or_default().to_string(),
                    group,
                    prefix: options.get("awslogs-stream-prefix").cloned(),
                    region: options.get("awslogs-region").cloned(),
                })
            })
            .collect();
        definitions.insert(definition.clone(), containers);
    }
    let containers = definitions[&definition].clone();
    if containers.is_empty() {
        return Ok((
            vec![],
            Err(format!(
                "{definition} sends no container's logs to CloudWatch Logs (awslogs)"
            )),
        ));
    }
    let mut streams = Vec::new();
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    for AwsLogs {
        container,
        group,
        prefix,
        region,
    } in containers
    {
        let stream = history::log_stream(prefix.as_deref(), &container, task.id());
        streams.push(format!("{group}/{stream}"));
        let mut conf = aws_sdk_cloudwatchlogs::config::Builder::from(&ctx.sdk);
        if let Some(region) = region {
            conf = conf.region(Region::new(region));
        }
        let cw = aws_sdk_cloudwatchlogs::Client::from_conf(conf.build());
        let mut token: Option<String> = None;
        loop {
            let page = call("GetLogEvents", || {
                cw.get_log_events()
                    .log_group_name(&group)
                    .log_stream_name(&stream)
                    .start_from_head(true)
                    .set_next_token(token.clone())
                    .send()
            })
            .await;
            let page = match page {
                Ok(page) => page,
                Err(f) => {
                    errors.push(f.message);
                    break;
                }
            };
            lines.extend(
                page.events()
                    .iter()
                    .filter_map(|e| e.message().map(String::from)),
            );
            // The end: the same forward token again (CloudWatch Logs API reference).
            let next = page.next_forward_token().map(String::from);
            if next.is_none() || next == token || page.events().is_empty() {
                break;
            }
            token = next;
        }
    }
    let read = if lines.is_empty() && !errors.is_empty() {
        Err(errors.join("; "))
    } else {
        Ok(lines)
    };
    Ok((streams, read))
}

// ------------------------------------------------------------- stop, redrive

async fn stop(ctx: &Ctx, arn: &str, cause: Option<String>) -> Result<Outcome, Failure> {
    let stopped = call("StopExecution", || {
        ctx.sfn
            .stop_execution()
            .execution_arn(arn)
            .set_cause(cause.clone())
            .send()
    })
    .await?;
    eprintln!("stopped {arn}");
    Ok(Outcome {
        code: exit::SUCCEEDED,
        document: json!({"executionArn": arn, "status": "ABORTED",
                         "stopDate": time(stopped.stop_date())}),
        line: format!("ABORTED {arn}"),
    })
}

async fn redrive(ctx: &Ctx, arn: &str, detach: bool, step: bool) -> Result<Outcome, Failure> {
    if !step {
        let described = call("DescribeExecution", || {
            ctx.sfn.describe_execution().execution_arn(arn).send()
        })
        .await?;
        if let Some(pipeline) = baton_cli::history::started_by(described.input().unwrap_or("")) {
            return Err(Failure::local(format!(
                "{arn} is a step of {pipeline}: redrive the pipeline (baton redrive {pipeline}), which runs its failed step again; --step redrives the step alone"
            )));
        }
    }
    // Where its history stands: the redrive is followed from there.
    let before = whole_history(ctx, arn).await?;
    let last_id = before.last().map(|e| e.id()).unwrap_or(0);
    let redriven = call("RedriveExecution", || {
        ctx.sfn.redrive_execution().execution_arn(arn).send()
    })
    .await?;
    eprintln!("redriven {arn} at {}", time(redriven.redrive_date()));
    if detach {
        return Ok(Outcome {
            code: exit::SUCCEEDED,
            document: json!({"executionArn": arn, "status": "RUNNING",
                             "redriveDate": time(redriven.redrive_date())}),
            line: arn.to_string(),
        });
    }
    follow(ctx, arn, last_id).await
}
