//! Lambda entry point: wiring only.

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
