//! Any bytes as the watchdog's EventBridge event, and as a `.sync` failure's cause:
//! no panic; a decision is always one from the table with a JSON cause in budget.
#![no_main]

use baton::ecs_event::{Verdict, parse_event, sync_verdict, verdict};
use baton::limits::{SFN_CAUSE_MAX_CHARS, aws_len};
use baton_fuzz::TABLE;
use libfuzzer_sys::fuzz_target;

fn check_cause(cause: &str) {
    assert!(aws_len(cause) <= SFN_CAUSE_MAX_CHARS);
    let parsed: serde_json::Value = serde_json::from_str(cause).expect("the cause is JSON");
    assert!(parsed.is_object());
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let sync = sync_verdict(text, Some("logs"));
    assert!(TABLE.contains(&sync.error));
    check_cause(&sync.cause);
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    let Ok(event) = parse_event(value) else {
        return;
    };
    if let Verdict::Fail { error, cause, .. } = verdict(&event.detail, None) {
        assert!(event.detail.is_stopped() && event.detail.token().is_some());
        assert!(TABLE.contains(&error));
        check_cause(&cause);
    }
});
