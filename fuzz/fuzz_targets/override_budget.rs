//! The override budget never accepts an override that could exceed 8,192
//! characters: whenever `fits_override` says yes, an independent worst-case count
//! of the JSON Step Functions sends (any escaping, UTF-16 units) is within it.
#![no_main]

use arbitrary::Arbitrary;
use baton::payload::{EnvEntry, Payload, S3Pointer, fits_override};
use baton_fuzz::worst_override_len;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Data {
    Text(String),
    Json(Vec<(String, String)>),
    Pointer {
        bucket: String,
        key: String,
        size: u64,
        etag: Option<String>,
        version: Option<String>,
    },
}

#[derive(Debug, Arbitrary)]
struct Case {
    container: String,
    output: String,
    data: Data,
    /// Repeats the text, to reach the limit with small inputs.
    repeat: u8,
}

fuzz_target!(|c: Case| {
    let payload = match c.data {
        Data::Text(s) => Payload::Inline(serde_json::Value::String(s.repeat(c.repeat as usize))),
        Data::Json(fields) => Payload::Inline(serde_json::Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect(),
        )),
        Data::Pointer {
            bucket,
            key,
            size,
            etag,
            version,
        } => Payload::S3(S3Pointer {
            bucket,
            key: key.repeat(1 + c.repeat as usize / 16),
            size,
            sha256: None,
            etag,
            version_id: version,
            content_type: None,
        }),
    };
    let other = [EnvEntry {
        name: "BATON_OUTPUT",
        value: &c.output,
    }];
    if fits_override(&c.container, &other, &payload) {
        let json = payload.to_json();
        let worst = worst_override_len(
            &c.container,
            &[("BATON_OUTPUT", &c.output), ("BATON_INPUT", &json)],
        );
        assert!(
            worst <= baton::limits::ECS_OVERRIDES_MAX_CHARS,
            "accepted an override of up to {worst} characters"
        );
    }
});
