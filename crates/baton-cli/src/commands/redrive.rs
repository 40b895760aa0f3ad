//! `baton redrive`: redrive a failed, timed-out or aborted execution from its failed
//! step, then follow it.

use serde_json::json;

use baton_cli::exit;
use baton_cli::history;

use super::follow::{follow, whole_history};
use crate::context::{Ctx, call};
use crate::output::{Failure, Outcome, time};

pub async fn redrive(ctx: &Ctx, arn: &str, detach: bool, step: bool) -> Result<Outcome, Failure> {
    if !step {
        let described = call("DescribeExecution", || {
            ctx.sfn.describe_execution().execution_arn(arn).send()
        })
        .await?;
        if let Some(pipeline) = history::started_by(described.input().unwrap_or("")) {
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
