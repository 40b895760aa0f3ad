//! `baton follow` over any execution history: no panic, whatever the details say.
#![no_main]

use arbitrary::Arbitrary;
use aws_sdk_sfn::types::{
    HistoryEvent, HistoryEventType, StateEnteredEventDetails, StateExitedEventDetails,
    TaskFailedEventDetails, TaskSubmittedEventDetails, TaskSucceededEventDetails,
    TaskTimedOutEventDetails,
};
use aws_smithy_types::DateTime;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Event {
    kind: u8,
    seconds: i32,
    name: String,
    resource_type: u8,
    length: i32,
    output: Option<String>,
    error: Option<String>,
    cause: Option<String>,
}

fuzz_target!(|input: (Option<String>, Vec<Event>)| {
    let (template, events) = input;
    let mut progress = baton_cli::progress::Progress::new(template);
    for (i, e) in events.into_iter().enumerate() {
        let resource = ["ecs", "lambda", "states"][e.resource_type as usize % 3];
        let kinds = [
            HistoryEventType::TaskStateEntered,
            HistoryEventType::TaskStateExited,
            HistoryEventType::TaskSubmitted,
            HistoryEventType::TaskSucceeded,
            HistoryEventType::TaskFailed,
            HistoryEventType::TaskTimedOut,
            HistoryEventType::ExecutionSucceeded,
            HistoryEventType::MapStateStarted,
            HistoryEventType::MapIterationStarted,
            HistoryEventType::MapIterationSucceeded,
            HistoryEventType::MapIterationFailed,
        ];
        let kind = kinds[e.kind as usize % kinds.len()].clone();
        let mut b = HistoryEvent::builder()
            .id(i as i64 + 1)
            .r#type(kind)
            .timestamp(DateTime::from_secs(e.seconds as i64));
        b = b
            .map_state_started_event_details(
                aws_sdk_sfn::types::MapStateStartedEventDetails::builder()
                    .length(e.length)
                    .build(),
            )
            .state_entered_event_details(
                StateEnteredEventDetails::builder()
                    .name(&e.name)
                    .build()
                    .expect("name"),
            )
            .state_exited_event_details(
                StateExitedEventDetails::builder()
                    .name(&e.name)
                    .build()
                    .expect("name"),
            )
            .task_submitted_event_details(
                TaskSubmittedEventDetails::builder()
                    .resource_type(resource)
                    .resource("runTask")
                    .set_output(e.output.clone())
                    .build()
                    .expect("fields"),
            )
            .task_succeeded_event_details(
                TaskSucceededEventDetails::builder()
                    .resource_type(resource)
                    .resource("runTask")
                    .set_output(e.output.clone())
                    .build()
                    .expect("fields"),
            )
            .task_failed_event_details(
                TaskFailedEventDetails::builder()
                    .resource_type(resource)
                    .resource("runTask")
                    .set_error(e.error.clone())
                    .set_cause(e.cause.clone())
                    .build()
                    .expect("fields"),
            )
            .task_timed_out_event_details(
                TaskTimedOutEventDetails::builder()
                    .resource_type(resource)
                    .resource("runTask")
                    .set_error(e.error)
                    .build()
                    .expect("fields"),
            );
        let event = b.build().expect("an event");
        let _ = progress.observe(&event);
        // A step's lines, indented under the execution that started it.
        if progress.nested_to_follow(&event).is_some() {
            let _ = progress.nested().observe(&event);
        }
        let _ = baton_cli::progress::Progress::ends(&event);
        if let Some(output) = &e.output {
            let _ = baton_cli::progress::describe_output(output);
            let _ = baton_cli::progress::describe_output_on_one_line(output);
        }
    }
});
