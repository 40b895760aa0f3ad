//! Lambda entry point: wiring only.

use baton::Store;
use baton::handoff::HandoffConfig;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use prepare_input::PrepareInput;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    baton::logs::init();
    let config = HandoffConfig::from_env()?;
    let sdk = baton::aws::load_config().await;
    let handler = PrepareInput::new(Store::new(baton::aws::s3_client(&sdk)), config);
    let handler = &handler;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let request = event.payload;
        baton::metrics::counted("prepare-input", &request.clone(), handler.handle(request)).await
    }))
    .await
}
