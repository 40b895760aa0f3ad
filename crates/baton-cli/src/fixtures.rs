//! The history events the tests of [`crate::history`] and [`crate::progress`] build
//! alike.

use aws_sdk_sfn::types::builders::HistoryEventBuilder;
use aws_sdk_sfn::types::{
    HistoryEvent, HistoryEventType, StateEnteredEventDetails, StateExitedEventDetails,
    TaskFailedEventDetails, TaskSubmittedEventDetails,
};
use aws_smithy_types::DateTime;

/// An event `secs` seconds into its history, `secs` its id too.
pub fn event(kind: HistoryEventType, secs: i64) -> HistoryEventBuilder {
    HistoryEvent::builder()
        .r#type(kind)
        .id(secs)
        .timestamp(DateTime::from_secs(1_700_000_000 + secs))
}

/// The task state `name` entered.
pub fn state_entered(secs: i64, name: &str) -> HistoryEvent {
    event(HistoryEventType::TaskStateEntered, secs)
        .state_entered_event_details(
            StateEnteredEventDetails::builder()
                .name(name)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

/// The task state `name` exited.
pub fn state_exited(secs: i64, name: &str) -> HistoryEvent {
    event(HistoryEventType::TaskStateExited, secs)
        .state_exited_event_details(
            StateExitedEventDetails::builder()
                .name(name)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

/// A task of `resource_type` (`ecs`, `states`, …) failed with `error` and `cause`.
pub fn task_failed(
    secs: i64,
    resource_type: &str,
    resource: &str,
    error: &str,
    cause: &str,
) -> HistoryEvent {
    event(HistoryEventType::TaskFailed, secs)
        .task_failed_event_details(
            TaskFailedEventDetails::builder()
                .resource_type(resource_type)
                .resource(resource)
                .error(error)
                .cause(cause)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

/// A step (a nested execution, `startExecution.sync:2`) failed: `States.TaskFailed`,
/// its cause the child's description.
pub fn step_failed(secs: i64, cause: &str) -> HistoryEvent {
    task_failed(
        secs,
        "states",
        "startExecution.sync:2",
        "States.TaskFailed",
        cause,
    )
}

/// The ECS task `task_id` started (`runTask.waitForTaskToken`).
pub fn ecs_task_submitted(secs: i64, task_id: &str) -> HistoryEvent {
    event(HistoryEventType::TaskSubmitted, secs)
        .task_submitted_event_details(
            TaskSubmittedEventDetails::builder()
                .resource_type("ecs")
                .resource("runTask.waitForTaskToken")
                .output(format!(
                    r#"{{"Tasks":[{{"TaskArn":"arn:aws:ecs:us-east-1:1:task/c/{task_id}"}}]}}"#
                ))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

/// A step started: the nested execution `…:execution:task:c-1`
/// (`startExecution.sync:2`).
pub fn step_started(secs: i64) -> HistoryEvent {
    event(HistoryEventType::TaskSubmitted, secs)
        .task_submitted_event_details(
            TaskSubmittedEventDetails::builder()
                .resource_type("states")
                .resource("startExecution.sync:2")
                .output(r#"{"ExecutionArn":"arn:aws:states:us-east-1:1:execution:task:c-1","StartDate":1}"#)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}
