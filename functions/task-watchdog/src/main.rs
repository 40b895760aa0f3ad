//! Lambda entry point: wiring only.
// The handler's future types (a batch of records, each with its SDK calls) are
// deeper than rustc's default query depth when the whole workspace is
// built for tests (features unified): `cargo test --workspace` stopped with
// "queries overflow the depth limit".
#![recursion_limit = "256"]

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use task_watchdog::Watchdog;

#[tokio::main]
async fn main() -> Result<(), Error> {
    baton::logs::init();
    let config = baton::aws::load_config().await;
    // The template sets BATON_TASK_LOGS, BATON_BUCKET and BATON_CLUSTER.
    let watchdog = &Watchdog::from_env(&config);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        watchdog.handle_invocation(event.payload).await
    }))
    .await
}
