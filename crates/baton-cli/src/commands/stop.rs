//! `baton stop`: stop a running execution.

use serde_json::json;

use baton_cli::exit;

use crate::context::{Ctx, call};
use crate::output::{Failure, Outcome, time};

pub async fn stop(ctx: &Ctx, arn: &str, cause: Option<String>) -> Result<Outcome, Failure> {
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
