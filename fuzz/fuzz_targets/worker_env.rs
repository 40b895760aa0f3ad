//! The worker's environment, as a container may set it: no panic, and what is
//! accepted is consistent (the output key lies under the output prefix).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 20] = [
    "TASK_TOKEN",
    "BATON_INPUT",
    "BATON_OUTPUT",
    "BATON_JOB",
    "BATON_HEARTBEAT_SECONDS",
    "BATON_READ_IDLE_SECONDS",
    "BATON_STALL_SECONDS",
    "BATON_TRANSFER_MEMORY",
    "BATON_COMMAND",
    "BATON_INPUT_MODE",
    "BATON_OUTPUT_MODE",
    "BATON_INPUT_PATH",
    "BATON_OUTPUT_PATH",
    "BATON_STOP_GRACE_SECONDS",
    "S3_BUCKET",
    "S3_KEY",
    "INPUT_JSON",
    "BATON_TOP_N",
    "BATON_SLEEP_SECONDS",
    "BATON_OUTPUT_CONTENT_TYPE",
];

#[derive(Debug, Arbitrary)]
struct Case {
    env: Vec<(u8, String)>,
    command: Option<Vec<String>>,
}

fuzz_target!(|c: Case| {
    let env: std::collections::HashMap<&str, String> = c
        .env
        .into_iter()
        .map(|(i, v)| (NAMES[i as usize % NAMES.len()], v))
        .collect();
    let jobs = baton_worker::jobs::builtin();
    let get = |name: &str| env.get(name).cloned();
    if let Ok(config) = baton_worker::config::WorkerConfig::from_lookup(get, &jobs, c.command) {
        assert!(config.output_key().starts_with(&config.output.key));
        let _ = config.execution();
        let _ = format!("{config:?}");
    }
});
