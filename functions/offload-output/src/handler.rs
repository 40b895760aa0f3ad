//! Passes pointers through, keeps small data inline, stores the rest in S3.

use baton::handoff::{ExecutionLayout, HandoffConfig, Target, TaskInput, fit_to_override};
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
        let (execution, layout, payload) = parse(event, &self.config)?;
        let target = Target {
            container: &self.config.container,
            output_uri: layout.output_uri("task2"),
        };
        let stage_key = layout.key("task1/offloaded");
        let input =
            fit_to_override(&self.store, payload, &target, &layout.bucket, &stage_key).await?;
        tracing::info!(execution = %execution, payload = %input.baton_input, "prepared task 2 input");
        Ok(input)
    }
}

/// Decode the state's input: the execution name, its S3 layout and task 1's result
/// as a Payload (a foreign worker's plain JSON becomes inline data). Pure, so the
/// fuzz target `lambda_input` can drive it.
pub fn parse(
    event: Value,
    config: &HandoffConfig,
) -> Result<(String, ExecutionLayout, Payload), Error> {
    let request: Request = serde_json::from_value(event).map_err(|e| {
        Error::InvalidInput(format!(
            "expected {{\"execution\": \"<name>\", \"result\": <task 1 output>}}: {e}"
        ))
    })?;
    let layout = config.layout(&request.execution)?;
    let payload = match Payload::from_value(&request.result)? {
        Some(payload) => payload,
        None => Payload::Inline(request.result),
    };
    Ok((request.execution, layout, payload))
}
