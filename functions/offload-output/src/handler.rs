//! Passes pointers through, keeps small data inline, stores the rest in S3.

use baton::handoff::{
    ExecutionLayout, HandoffConfig, Target, TaskInput, fit_to_override, step_or_default,
};
use baton::payload::Payload;
use baton::{Error, Store};
use serde::Deserialize;
use serde_json::Value;

/// The state's input: the execution name and what task 1 sent with
/// `SendTaskSuccess` (a Baton Payload, or any JSON from a foreign worker).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub execution: String,
    pub result: Value,
    /// The step that produced `result` (default [`baton::handoff::DEFAULT_STEP`]):
    /// data too large to stay inline is stored at `executions/<name>/<step>/offloaded`.
    #[serde(default)]
    pub step: Option<String>,
    /// The step that reads it (default `task2`): its `BATON_OUTPUT`.
    #[serde(default)]
    pub next: Option<String>,
}

pub struct OffloadOutput {
    store: Store,
    config: HandoffConfig,
}

impl OffloadOutput {
    pub fn new(store: Store, config: HandoffConfig) -> OffloadOutput {
        OffloadOutput { store, config }
    }

    pub async fn handle(&self, event: Value) -> Result<TaskInput, Error> {
        let (request, layout, payload) = parse(event, &self.config)?;
        let step = step_or_default(request.step.as_deref());
        let target = Target {
            container: &self.config.container,
            output_uri: layout.output_uri(request.next.as_deref().unwrap_or("task2")),
        };
        let stage_key = layout.key(&format!("{step}/offloaded"));
        let input =
            fit_to_override(&self.store, payload, &target, &layout.bucket, &stage_key).await?;
        tracing::info!(execution = %request.execution, step, payload = %input.baton_input, "handed a task's output on");
        Ok(input)
    }
}

/// Decode the state's input: the execution name, its S3 layout and task 1's result
/// as a Payload (a foreign worker's plain JSON becomes inline data). Pure, so the
/// fuzz target `lambda_input` can drive it.
pub fn parse(
    event: Value,
    config: &HandoffConfig,
) -> Result<(Request, ExecutionLayout, Payload), Error> {
    let request: Request = serde_json::from_value(event).map_err(|e| {
        Error::InvalidInput(format!(
            "expected {{\"execution\": \"<name>\", \"result\": <task 1 output>}}: {e}"
        ))
    })?;
    let layout = config.layout(&request.execution)?;
    for step in [&request.step, &request.next].into_iter().flatten() {
        baton::handoff::validate_step(step)?;
    }
    let payload = match Payload::from_value(&request.result)? {
        Some(payload) => payload,
        None => Payload::Inline(request.result.clone()),
    };
    Ok((request, layout, payload))
}
