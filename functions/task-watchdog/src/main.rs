//! Lambda entry point: wiring only.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use task_watchdog::Watchdog;

#[tokio::main]
async fn main() -> Result<(), Error> {
    baton::logs::init();
    let config = baton::aws::load_config().await;
    let logs_template = std::env::var("BATON_TASK_LOGS")
        .ok()
        .filter(|s| !s.is_empty());
    let mut watchdog = Watchdog::new(&config, logs_template);
    // BATON_BUCKET (the template sets it): clean up after executions that end.
    if let Ok(handoff) = baton::handoff::HandoffConfig::from_env() {
        watchdog = watchdog.with_handoff(handoff);
    }
    // BATON_CLUSTER (the template sets it): stop the tasks of executions that end.
    if let Some(cluster) = std::env::var("BATON_CLUSTER")
        .ok()
        .filter(|c| !c.is_empty())
    {
        watchdog = watchdog.with_cluster(cluster);
    }
    let watchdog = &watchdog;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        watchdog.handle_invocation(event.payload).await
    }))
    .await
}
