//! Service limits Baton budgets against, each with its source.

/// ECS `RunTask` overrides: 8,192 characters in total, JSON formatting included
/// (ECS RunTask API reference, `overrides`).
pub const ECS_OVERRIDES_MAX_CHARS: usize = 8_192;

/// Step Functions task token: 1..=1,024 characters (SFN service model, `TaskToken`).
pub const TASK_TOKEN_MAX_CHARS: usize = 1_024;

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

/// Largest output a worker returns inline rather than as a pointer. Far below the
/// 256 KiB state limit, and small enough to ride in the next task's 8 KiB override
/// beside a 1 KiB token without being staged again.
pub const INLINE_RESULT_MAX_BYTES: usize = 4 * 1024;

/// Cut `s` to at most `max` characters (Unicode scalar values, as the SFN
/// service model counts them), never splitting a character.
pub fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((byte_index, _)) => &s[..byte_index],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
