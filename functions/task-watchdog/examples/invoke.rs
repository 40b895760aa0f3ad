//! One watchdog invocation outside Lambda: the request (any JSON the function takes:
//! an SQS batch, an EventBridge event, `{"taskTimedOut": …}`) on stdin, the answer on
//! stdout, configured from the environment as the function is
//! ([`Watchdog::from_env`], `AWS_ENDPOINT_URL` and credentials as every SDK reads
//! them). For bench/find_tasks.py, and for trying a request against a local endpoint.
//!
//! ```text
//! cargo run -p task-watchdog --example invoke < events/sfn-execution-failed.json
//! ```

use std::io::Read;

use task_watchdog::Watchdog;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    baton::logs::init();
    let mut request = String::new();
    std::io::stdin().read_to_string(&mut request)?;
    let config = baton::aws::load_config().await;
    let answer = Watchdog::from_env(&config)
        .handle_invocation(serde_json::from_str(&request)?)
        .await?;
    println!("{answer}");
    Ok(())
}
