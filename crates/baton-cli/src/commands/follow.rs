//! `baton follow`: print an execution's progress, and its steps' indented, until it
//! ends; and the history reading the other commands share.

use std::time::{Duration, Instant};

use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent, HistoryEventType};
use serde_json::{Value, json};

use baton_cli::exit;
use baton_cli::history::{self, HistoryCursor};
use baton_cli::progress::{Progress, describe_output_on_one_line};

use crate::context::{Ctx, call, now_secs};
use crate::output::{Failure, Outcome, time};

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
pub async fn follow(ctx: &Ctx, arn: &str, after_id: i64) -> Result<Outcome, Failure> {
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
pub async fn failed_tasks(ctx: &Ctx, arn: &str) -> Vec<(Option<String>, Option<String>)> {
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

/// Every event of a history, oldest first.
pub async fn whole_history(ctx: &Ctx, arn: &str) -> Result<Vec<HistoryEvent>, Failure> {
    let mut f = Followed {
        arn: arn.to_string(),
        progress: Progress::new(None),
        cursor: HistoryCursor::after(0),
        ended: false,
    };
    new_events(ctx, &mut f).await
}
