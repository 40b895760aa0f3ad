//! `baton ls`: the state machine's recent executions, with each failed one's
//! `Baton.*` error.

use aws_sdk_sfn::types::ExecutionStatus;
use aws_smithy_types::DateTime;
use clap::ValueEnum;
use serde_json::json;

use baton_cli::exit;
use baton_cli::history;

use super::follow::failed_tasks;
use crate::context::{Ctx, call, now_secs};
use crate::output::{Failure, Outcome, time};

#[derive(Clone, Copy, ValueEnum)]
pub enum StatusFilter {
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

pub async fn ls(ctx: &Ctx, max: i32, status: Option<StatusFilter>) -> Result<Outcome, Failure> {
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
