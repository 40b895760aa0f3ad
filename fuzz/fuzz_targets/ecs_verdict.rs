//! The watchdog's verdict is total: every STOPPED event that carries a token gets
//! exactly one error name from the table, and a cause that is a JSON object within
//! Step Functions' 32,768 characters; the error stays within 256.
#![no_main]

use arbitrary::Arbitrary;
use baton::ecs_event::{
    Container, ContainerOverride, KeyValue, Overrides, TaskStateChange, Verdict, verdict,
};
use baton::limits::{SFN_CAUSE_MAX_CHARS, SFN_ERROR_MAX_CHARS, aws_len};
use baton_fuzz::TABLE;
use libfuzzer_sys::fuzz_target;

/// A container: name, exit code, reason.
type ArbitraryContainer = (Option<String>, Option<i64>, Option<Reason>);

#[derive(Debug, Arbitrary)]
struct Event {
    stopped: bool,
    stop_code: Option<StopCode>,
    stopped_reason: Option<String>,
    task_arn: Option<String>,
    containers: Option<Vec<ArbitraryContainer>>,
    token: Option<String>,
    overrides: bool,
    extra_env: Vec<(Option<String>, Option<String>)>,
    logs: Option<String>,
}

#[derive(Debug, Arbitrary)]
enum StopCode {
    TaskFailedToStart,
    EssentialContainerExited,
    UserInitiated,
    ServiceSchedulerInitiated,
    SpotInterruption,
    TerminationNotice,
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum Reason {
    OutOfMemory(String),
    Other(String),
}

fuzz_target!(|e: Event| {
    let stop_code = e.stop_code.map(|c| match c {
        StopCode::Other(s) => s,
        known => format!("{known:?}"),
    });
    let mut environment: Vec<KeyValue> = e
        .extra_env
        .into_iter()
        .map(|(name, value)| KeyValue { name, value })
        .collect();
    if let Some(token) = &e.token {
        environment.push(KeyValue {
            name: Some("TASK_TOKEN".into()),
            value: Some(token.clone()),
        });
    }
    let detail = TaskStateChange {
        task_arn: e.task_arn,
        last_status: Some(if e.stopped { "STOPPED" } else { "RUNNING" }.into()),
        stop_code,
        stopped_reason: e.stopped_reason,
        containers: e.containers.map(|cs| {
            cs.into_iter()
                .map(|(name, exit_code, reason)| Container {
                    name,
                    exit_code,
                    reason: reason.map(|r| match r {
                        Reason::OutOfMemory(s) => format!("OutOfMemoryError: {s}"),
                        Reason::Other(s) => s,
                    }),
                    ..Default::default()
                })
                .collect()
        }),
        overrides: e.overrides.then(|| Overrides {
            container_overrides: Some(vec![ContainerOverride {
                name: Some("worker".into()),
                environment: Some(environment),
            }]),
        }),
        ..Default::default()
    };
    let has_token = detail.token().is_some();
    match verdict(&detail, e.logs.as_deref()) {
        Verdict::Fail { error, cause, .. } => {
            assert!(e.stopped && has_token);
            assert!(TABLE.contains(&error), "{error} is not in the table");
            assert!(aws_len(error) <= SFN_ERROR_MAX_CHARS);
            assert!(
                aws_len(&cause) <= SFN_CAUSE_MAX_CHARS,
                "cause of {} units",
                aws_len(&cause)
            );
            let parsed: serde_json::Value =
                serde_json::from_str(&cause).expect("the cause is JSON");
            assert!(parsed.is_object());
        }
        Verdict::NotStopped { .. } => assert!(!e.stopped),
        Verdict::OverridesMissing => assert!(e.stopped && !e.overrides),
        Verdict::NoToken => assert!(e.stopped && !has_token),
    }
});
