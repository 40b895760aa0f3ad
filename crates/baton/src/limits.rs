//! Service limits Baton budgets against, each with its source.

/// ECS `RunTask` overrides: 8,192 characters in total, JSON formatting included
/// (ECS RunTask API reference, `overrides`).
pub const ECS_OVERRIDES_MAX_CHARS: usize = 8_192;

/// Step Functions task token: up to 2,048 characters (SendTaskSuccess API reference;
/// SFN service model `TaskToken`, max 2048). Used for budgets only: a token is never
/// rejected client-side for its length, the service decides.
pub const TASK_TOKEN_MAX_CHARS: usize = 2_048;

/// An execution ARN: up to 256 characters (DescribeExecution API reference,
/// `executionArn`). The task state machine hands its own to the task
/// (`BATON_EXECUTION`), so the watchdog can tell a step's attempts apart.
pub const EXECUTION_ARN_MAX_CHARS: usize = 256;

/// `SendTaskSuccess.output` and any state input/output: 262,144 characters
/// (SFN service model `SensitiveData`; Step Functions quotas page).
pub const SFN_PAYLOAD_MAX_CHARS: usize = 262_144;

/// `SendTaskFailure.error`: at most 256 characters (SFN service model `SensitiveError`).
pub const SFN_ERROR_MAX_CHARS: usize = 256;

/// `SendTaskFailure.cause`: at most 32,768 characters (SFN service model
/// `SensitiveCause`). A longer cause is rejected and the failure is lost.
pub const SFN_CAUSE_MAX_CHARS: usize = 32_768;

/// S3 multipart: every part but the last must be at least 5 MiB (S3 UploadPart).
pub const S3_MIN_PART_BYTES: usize = 5 * 1024 * 1024;

/// S3 multipart: at most 10,000 parts per upload (S3 UploadPart).
pub const S3_MAX_PARTS: usize = 10_000;

/// S3 multipart: a part is at most 5 GiB ("Amazon S3 multipart upload limits").
pub const S3_MAX_PART_BYTES: usize = 5 * 1024 * 1024 * 1024;

/// Largest output a worker returns inline rather than as a pointer. Far below the
/// 256 KiB state limit, and small enough to ride in the next task's 8 KiB override
/// beside a 2 KiB token without being staged again (offload-output checks the
/// budget and stages it when escaping makes it longer).
pub const INLINE_RESULT_MAX_BYTES: usize = 4 * 1024;

/// Length of `s` as an AWS limit may count it. The service models count Unicode
/// scalar values (Smithy's `length` trait); a service that checks with Java's
/// `String.length()` counts UTF-16 code units, where a character outside the Basic
/// Multilingual Plane (an emoji) takes two. Budgets count the larger: UTF-16 units,
/// never fewer than scalar values. (Found by the `override_budget` fuzz target: an
/// override of 8,192 scalar values with emoji in it is longer in UTF-16 units.)
pub fn aws_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Cut `s` to at most `max` [`aws_len`] units, never splitting a character.
pub fn truncate_aws(s: &str, max: usize) -> &str {
    let mut units = 0;
    for (index, c) in s.char_indices() {
        units += c.len_utf16();
        if units > max {
            return &s[..index];
        }
    }
    s
}

/// Cut `s` to at most `max` characters (Unicode scalar values, as the SFN
/// service model counts them), never splitting a character.
pub fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((byte_index, _)) => &s[..byte_index],
        None => s,
    }
}

/// A failure cause as JSON text within `SFN_CAUSE_MAX_CHARS`, still valid JSON.
///
/// State machines parse causes (`States.StringToJson` in a Pass state, which cannot
/// catch), so the text itself is never cut: every string in `value` is shortened,
/// to at most `field_max` characters and then to half as many again, until the
/// serialised whole fits. Escaping is counted, since that is what is sent.
pub fn fit_json_cause(value: &serde_json::Value, field_max: usize) -> String {
    let mut max = field_max;
    loop {
        let text = shorten_strings(value, max).to_string();
        if aws_len(&text) <= SFN_CAUSE_MAX_CHARS || max == 0 {
            return text;
        }
        max /= 2;
    }
}

fn shorten_strings(value: &serde_json::Value, max: usize) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(truncate_chars(s, max).to_string()),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| shorten_strings(v, max)).collect())
        }
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| {
                    (
                        truncate_chars(k, max.max(64)).to_string(),
                        shorten_strings(v, max),
                    )
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_lengths_count_utf16_units_and_cuts_keep_characters_whole() {
        let s = "a€𝄞b";
        assert_eq!((aws_len(s), s.chars().count()), (5, 4));
        assert_eq!(truncate_aws(s, 0), "");
        assert_eq!(truncate_aws(s, 2), "a€");
        assert_eq!(
            truncate_aws(s, 3),
            "a€",
            "the emoji takes two units: it does not fit in one"
        );
        assert_eq!(truncate_aws(s, 4), "a€𝄞");
        assert_eq!(truncate_aws(s, 5), s);
        assert_eq!(truncate_aws(s, 99), s);
    }

    #[test]
    fn truncation_keeps_short_strings() {
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_chars("abc", 10), "abc");
        assert_eq!(truncate_chars("", 0), "");
    }

    #[test]
    fn truncation_counts_characters_not_bytes() {
        // "é" is 2 bytes, "€" is 3, "𝄞" is 4: the cut lands on character boundaries.
        let s = "é€𝄞x";
        assert_eq!(truncate_chars(s, 0), "");
        assert_eq!(truncate_chars(s, 1), "é");
        assert_eq!(truncate_chars(s, 2), "é€");
        assert_eq!(truncate_chars(s, 3), "é€𝄞");
        assert_eq!(truncate_chars(s, 4), s);
    }

    #[test]
    fn truncation_of_a_long_multibyte_cause_fits_the_limit() {
        let cause = "€".repeat(SFN_CAUSE_MAX_CHARS + 10);
        let cut = truncate_chars(&cause, SFN_CAUSE_MAX_CHARS);
        assert_eq!(cut.chars().count(), SFN_CAUSE_MAX_CHARS);
        assert!(
            cut.len() > SFN_CAUSE_MAX_CHARS,
            "bytes exceed chars for multi-byte text"
        );
    }

    #[test]
    fn a_fitted_cause_is_valid_json_within_the_limit_whatever_the_escaping() {
        // Control characters escape to six characters each: a naive cut of the text
        // would land mid-string and break the JSON the state machine parses.
        let nasty = "\u{1}\"\\é".repeat(20_000);
        let value = serde_json::json!({
            "message": nasty,
            "containers": (0..20).map(|i| serde_json::json!({"name": i, "reason": nasty})).collect::<Vec<_>>(),
            "exitCode": 137,
        });
        let text = fit_json_cause(&value, 2_048);
        assert!(
            text.chars().count() <= SFN_CAUSE_MAX_CHARS,
            "{}",
            text.len()
        );
        let back: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(back["exitCode"], 137);
        assert_eq!(back["containers"].as_array().unwrap().len(), 20);
        // Small causes pass unchanged.
        let small = serde_json::json!({"message": "boom"});
        assert_eq!(fit_json_cause(&small, 2_048), small.to_string());
    }
}
