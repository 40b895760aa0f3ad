//! A `.sync` task state failed: statemachine/sync.asl.json catches
//! `States.TaskFailed` and invokes the watchdog with `{"stoppedTask": <its cause>}`
//! (the stopped task's description); the answer is the Baton error for it by the
//! watchdog's error table ([`baton::ecs_event::sync_verdict`]) and whether to run
//! the task again.

use baton::ecs_event;
use serde_json::Value;

/// The invocation's key: `{"stoppedTask": "<States.TaskFailed cause>"}`, which the
/// Task1Verdict and Task2Verdict states of statemachine/sync.asl.json build in
/// their Parameters.
pub const REQUEST_KEY: &str = "stoppedTask";

/// `{"error", "cause", "retryable"}` for the failed task's cause.
pub fn answer(cause: &str) -> Value {
    let verdict = ecs_event::sync_verdict(cause, None);
    tracing::info!(
        error = verdict.error,
        retryable = verdict.retryable,
        "a .sync task failed"
    );
    // The .sync pipeline decides the step's Baton.* error here: count it as the
    // watchdog counts the tokens it fails.
    baton::metrics::MetricSet::failure(verdict.error)
        .property("function", "task-watchdog")
        .property("retryable", verdict.retryable)
        .emit();
    serde_json::to_value(verdict).expect("a verdict serialises")
}
