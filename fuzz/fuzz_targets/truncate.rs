//! Truncation never splits a character and never breaks the cause's JSON.
#![no_main]

use arbitrary::Arbitrary;
use baton::limits::{SFN_CAUSE_MAX_CHARS, aws_len, fit_json_cause, truncate_aws, truncate_chars};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Case {
    text: String,
    max: u16,
    fields: Vec<(String, String)>,
    repeat: u16,
}

fuzz_target!(|c: Case| {
    let max = c.max as usize;
    let cut = truncate_chars(&c.text, max);
    assert!(c.text.starts_with(cut) && cut.chars().count() <= max);
    assert!(
        cut.len() == c.text.len() || cut.chars().count() == max,
        "cut only as much as needed"
    );
    let cut = truncate_aws(&c.text, max);
    assert!(c.text.starts_with(cut) && aws_len(cut) <= max);
    if cut.len() < c.text.len() {
        let next = c.text[cut.len()..]
            .chars()
            .next()
            .expect("a character follows");
        assert!(
            aws_len(cut) + next.len_utf16() > max,
            "cut only as much as needed"
        );
    }
    // A cause shaped as the watchdog's: a few fields, some long.
    let long = c.text.repeat(1 + c.repeat as usize);
    let mut cause = serde_json::Map::new();
    cause.insert("message".into(), serde_json::Value::String(long.clone()));
    for (k, v) in c.fields.iter().take(12) {
        cause.insert(
            k.chars().take(64).collect(),
            serde_json::Value::String(format!("{v}{long}")),
        );
    }
    let value = serde_json::Value::Object(cause);
    let text = fit_json_cause(&value, 2_048);
    assert!(
        aws_len(&text) <= SFN_CAUSE_MAX_CHARS,
        "a cause of {} units",
        aws_len(&text)
    );
    let back: serde_json::Value = serde_json::from_str(&text).expect("the cause is JSON");
    assert_eq!(
        back.as_object().map(|o| o.len()),
        value.as_object().map(|o| o.len()),
        "no field is lost"
    );
});
