//! The watchdog's verdict on every sample event in `events/`.

use baton::ecs_event::{Verdict, parse_event, verdict};
use baton::names;

fn load(name: &str) -> baton::ecs_event::TaskStateChangeEvent {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    parse_event(serde_json::from_str(&text).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn error_for(name: &str) -> &'static str {
    match verdict(&load(name).detail, None) {
        Verdict::Fail {
            error,
            cause,
            token,
        } => {
            let cause: serde_json::Value = serde_json::from_str(&cause).expect("cause is JSON");
            assert!(
                cause["taskArn"].as_str().unwrap().contains(":task/"),
                "{name}"
            );
            assert!(!format!("{token:?}").contains("AQCE"), "token printed");
            error
        }
        other => panic!("{name}: expected a failure, got {other:?}"),
    }
}

#[test]
fn every_stopped_case_maps_to_its_row() {
    let cases = [
        ("ecs-task-failed-to-start.json", names::TASK_FAILED_TO_START),
        ("ecs-out-of-memory.json", names::OUT_OF_MEMORY),
        ("ecs-container-exited.json", names::CONTAINER_EXITED),
        ("ecs-no-callback.json", names::NO_CALLBACK),
        ("ecs-user-stopped.json", names::TASK_STOPPED),
        ("ecs-spot-interrupted.json", names::TASK_STOPPED),
        ("ecs-termination-notice.json", names::TASK_STOPPED),
        ("ecs-token-in-sidecar.json", names::CONTAINER_EXITED),
    ];
    for (file, want) in cases {
        assert_eq!(error_for(file), want, "{file}");
    }
}

#[test]
fn spot_warning_while_running_is_ignored() {
    let event = load("ecs-spot-warning-running.json");
    assert!(matches!(
        verdict(&event.detail, None),
        Verdict::NotStopped { .. }
    ));
}

#[test]
fn a_task_without_a_token_is_ignored() {
    let event = load("ecs-no-token.json");
    assert_eq!(verdict(&event.detail, None), Verdict::NoToken);
}

#[test]
fn the_token_is_found_in_a_sidecar_override() {
    let event = load("ecs-token-in-sidecar.json");
    assert!(event.detail.token().unwrap().starts_with("AQCE"));
}

#[test]
fn events_round_trip_through_the_model() {
    let dir = format!("{}/../../events", env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("ecs-") {
            continue;
        }
        let event = load(&name);
        let again = serde_json::to_value(&event).unwrap();
        let reparsed = parse_event(again).unwrap();
        assert_eq!(reparsed.detail, event.detail, "{name}");
        seen += 1;
    }
    assert!(
        seen >= 10,
        "expected at least 10 ECS sample events, found {seen}"
    );
}

#[test]
fn other_events_are_rejected_clearly() {
    let not_ecs = serde_json::json!({
        "version": "0", "id": "1", "detail-type": "Object Created", "source": "aws.s3",
        "account": "1", "time": "2024-11-13T21:23:12Z", "region": "us-east-1",
        "resources": [], "detail": {}
    });
    let err = parse_event(not_ecs).unwrap_err();
    assert_eq!(err.name(), names::INVALID_INPUT);
    assert!(err.to_string().contains("ECS Task State Change"));
    let err = parse_event(serde_json::json!({"hello": "world"})).unwrap_err();
    assert_eq!(err.name(), names::INVALID_INPUT);
}
