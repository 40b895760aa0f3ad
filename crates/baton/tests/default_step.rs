//! Which default step applies where: the Lambdas' ([`DEFAULT_STEP`], for a request
//! that names none) and the reusable task state machine's own, read from the
//! state machine definitions.

use baton::handoff::{DEFAULT_STEP, step_or_default, validate_step};
use moto_harness::{all_states, lambda_invocations, state_machine, state_machines};
use serde_json::Value;

/// The reusable task state machine's default step (statemachine/task.asl.json,
/// the defaults its PrepareInput state sends): one task on its own, not the first of two, so not
/// [`DEFAULT_STEP`].
const TASK_MACHINE_STEP: &str = "task";

const LAMBDAS: [&str; 2] = ["${PrepareInputFunctionArn}", "${OffloadOutputFunctionArn}"];

/// The states of a definition that invoke prepare-input or offload-output, with
/// the Payload they send.
fn lambda_requests(definition: &Value) -> Vec<(&str, &Value)> {
    LAMBDAS
        .iter()
        .flat_map(|function| lambda_invocations(definition, function))
        .map(|(name, state)| (name, &state["Parameters"]["Payload"]))
        .collect()
}

fn names_a_step(payload: &Value) -> bool {
    let names = |p: &Value| p.get("step").is_some() || p.get("step.$").is_some();
    names(payload) || payload.get("defaults").is_some_and(names)
}

#[test]
fn the_default_step_is_a_step() {
    validate_step(DEFAULT_STEP).unwrap();
    validate_step(TASK_MACHINE_STEP).unwrap();
    assert_eq!(step_or_default(None), DEFAULT_STEP);
    assert_eq!(step_or_default(Some("merge")), "merge");
}

#[test]
fn the_task_state_machine_defaults_its_step_and_always_passes_it() {
    let task = state_machine("statemachine/task.asl.json");
    let first = &task["States"][task["StartAt"].as_str().unwrap()];
    let request = &first["Parameters"]["Payload"];
    assert_eq!(
        request["defaults"]["step"], TASK_MACHINE_STEP,
        "task.asl.json's default step, sent by its first state"
    );
    // Its whole input goes over those defaults: a step it names wins.
    assert_eq!(request["task.$"], "$", "the task's input");
    let requests = lambda_requests(&task);
    assert_eq!(requests.len(), 2, "prepare-input and offload-output");
    for (state, payload) in requests {
        // Its default, not the Lambdas', decides its folder: the step prepare-input
        // decided (returned as $.task) is what offload-output gets.
        if payload.get("defaults").is_none() {
            assert_eq!(payload["step.$"], "$.task.step", "{state}");
        }
    }
}

#[test]
fn only_the_sync_pipeline_leaves_the_step_to_the_lambdas_and_reads_its_folder() {
    let mut without_step = Vec::new();
    for (path, definition) in state_machines() {
        for (state, payload) in lambda_requests(&definition) {
            if !names_a_step(payload) {
                without_step.push(format!("{path} {state}"));
            }
        }
    }
    assert_eq!(without_step, ["statemachine/sync.asl.json PrepareInput"]);

    // Its task 1 writes where prepare-input said (the default step's folder), and
    // its task 2 reads task 1's output from there.
    let sync = state_machine("statemachine/sync.asl.json");
    let read_by_task2: Vec<&str> = all_states(&sync)
        .into_iter()
        .flat_map(|(_, state)| {
            state["Parameters"]["Overrides"]["ContainerOverrides"]
                .as_array()
                .into_iter()
                .flatten()
        })
        .flat_map(|o| o["Environment"].as_array().into_iter().flatten())
        .filter(|variable| variable["Name"] == "S3_KEY")
        .filter_map(|variable| variable["Value.$"].as_str())
        .collect();
    assert_eq!(
        read_by_task2,
        [format!(
            "States.Format('executions/{{}}/{DEFAULT_STEP}/output', $$.Execution.Name)"
        )]
    );
}
