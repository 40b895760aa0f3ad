//! The keys the state machines write and the watchdog reads are the same: the
//! invocation's key and fields (their Parameters), where the Catch puts a timeout
//! (its ResultPath), and what they read of the answer (their ResultSelector). A
//! rename on either side fails here.

use moto_harness::{all_states, lambda_invocations, sample_event, state_machines};
use serde_json::Value;
use task_watchdog::sync_verdict;
use task_watchdog::timed_out::{self, Stopping, TimedOutState};

const WATCHDOG: &str = "${TaskWatchdogFunctionArn}";

/// A Parameters field's name: without the `.$` of a path.
fn field(name: &str) -> &str {
    name.strip_suffix(".$").unwrap_or(name)
}

fn sorted<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut names: Vec<&str> = names.into_iter().collect();
    names.sort_unstable();
    names
}

/// The Catch clauses of a definition that go to `target`.
fn catchers<'a>(definition: &'a Value, target: &str) -> Vec<&'a Value> {
    all_states(definition)
        .into_iter()
        .flat_map(|(_, state)| state["Catch"].as_array().into_iter().flatten())
        .filter(|catch| catch["Next"] == target)
        .collect()
}

/// The fields of the answer a state's ResultSelector reads (`$.Payload.<field>`).
fn answer_fields_read(state: &Value) -> Vec<&str> {
    state["ResultSelector"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, path)| {
            let path = path.as_str().unwrap_or_default();
            path.strip_prefix("$.Payload.")
                .unwrap_or_else(|| panic!("{name}: {path} is not a field of the answer"))
        })
        .collect()
}

fn assert_answer_has(read: &[&str], answer: &Value, what: &str) {
    assert!(!read.is_empty(), "{what}: reads nothing of the answer");
    for field in read {
        assert!(
            answer.get(field).is_some(),
            "{what} reads {field}, the answer is {answer}"
        );
    }
}

/// `{"taskTimedOut": {…}}`: its fields are the ones [`TimedOutState`] reads, its
/// `timedOut` is where the catchers put the timeout, and the state reads what
/// [`timed_out::answer`] answers.
fn check_timed_out(definition: &Value, name: &str, state: &Value, request: &Value, what: &str) {
    let request = request.as_object().unwrap();
    assert_eq!(
        sorted(request.keys().map(|k| field(k))),
        sorted(timed_out::FIELDS),
        "{what}: the fields of {}",
        timed_out::REQUEST_KEY
    );
    let caught = request["timedOut.$"].as_str().unwrap();
    let mut seen = Vec::new();
    for catch in catchers(definition, name) {
        let errors = catch["ErrorEquals"].as_array().unwrap();
        let key = match errors.as_slice() {
            [e] if e == "States.HeartbeatTimeout" => timed_out::CAUGHT_HEARTBEAT,
            [e] if e == "States.Timeout" => timed_out::CAUGHT_TIMEOUT,
            other => panic!("{what}: a catcher of {other:?}"),
        };
        assert_eq!(catch["ResultPath"], format!("{caught}.{key}"), "{what}");
        seen.push(key);
    }
    assert_eq!(
        sorted(seen),
        sorted([timed_out::CAUGHT_HEARTBEAT, timed_out::CAUGHT_TIMEOUT]),
        "{what}: both timeouts are caught"
    );
    let sample = sample_event("sfn-task-timed-out.json");
    let timed_out: TimedOutState =
        serde_json::from_value(sample[timed_out::REQUEST_KEY].clone()).unwrap();
    let answer = timed_out::answer(&timed_out, &Stopping::NoCluster);
    assert_answer_has(&answer_fields_read(state), &answer, what);
}

/// `{"stoppedTask": <cause>}`: the cause of the `States.TaskFailed` its catchers
/// caught, and the state reads what [`sync_verdict::answer`] answers.
fn check_stopped_task(definition: &Value, name: &str, state: &Value, cause: &Value, what: &str) {
    let cause = cause.as_str().unwrap();
    let catchers = catchers(definition, name);
    assert!(!catchers.is_empty(), "{what}: nothing goes to it");
    for catch in catchers {
        assert_eq!(
            catch["ErrorEquals"],
            serde_json::json!(["States.TaskFailed"])
        );
        let result = catch["ResultPath"].as_str().unwrap();
        assert_eq!(cause, format!("{result}.Cause"), "{what}");
    }
    let sample = sample_event("sync-task-failed.json");
    let answer = sync_verdict::answer(sample[sync_verdict::REQUEST_KEY].as_str().unwrap());
    assert_answer_has(&answer_fields_read(state), &answer, what);
}

#[test]
fn what_the_state_machines_send_is_what_the_watchdog_reads() {
    let mut kinds = Vec::new();
    for (path, definition) in state_machines() {
        for (name, state) in lambda_invocations(&definition, WATCHDOG) {
            let what = format!("{path} {name}");
            let payload = state["Parameters"]["Payload"]
                .as_object()
                .unwrap_or_else(|| panic!("{what}: its Payload is not built in Parameters"));
            let [(key, value)] = payload.iter().collect::<Vec<_>>()[..] else {
                panic!("{what}: one key, the kind of invocation: {payload:?}");
            };
            match field(key) {
                k if k == timed_out::REQUEST_KEY => {
                    check_timed_out(&definition, name, state, value, &what)
                }
                k if k == sync_verdict::REQUEST_KEY && key.ends_with(".$") => {
                    check_stopped_task(&definition, name, state, value, &what)
                }
                other => panic!("{what}: the watchdog reads no {other:?}"),
            }
            kinds.push(field(key).to_string());
        }
    }
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        [sync_verdict::REQUEST_KEY, timed_out::REQUEST_KEY],
        "both kinds are sent by some state machine"
    );
}
