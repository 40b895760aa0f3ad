//! Lambda entry point: wiring only.

use baton::Store;
use baton::handoff::HandoffConfig;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use offload_output::OffloadOutput;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    baton::logs::init();
    let config = HandoffConfig::from_env()?;
    let sdk = baton::aws::load_config().await;
    let handler = OffloadOutput::new(Store::new(baton::aws::s3_client(&sdk)), config);
    let handler = &handler;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let execution = event
            .payload
            .get("execution")
            .and_then(Value::as_str)
            .map(String::from);
        handler.handle(event.payload).await.inspect_err(|e| {
            // Best effort: the Baton.* error counted, the execution a property.
            baton::metrics::MetricSet::failure(e.name())
                .property("function", "offload-output")
                .property("execution", execution)
                .emit();
        })
    }))
    .await
}
