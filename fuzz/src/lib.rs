//! What the fuzz targets share: the error table, and an independent count of the
//! JSON an override takes (written apart from `baton::payload`, to check it).

/// Every error name the watchdog's table can give.
pub const TABLE: [&str; 5] = [
    baton::names::TASK_FAILED_TO_START,
    baton::names::OUT_OF_MEMORY,
    baton::names::CONTAINER_EXITED,
    baton::names::NO_CALLBACK,
    baton::names::TASK_STOPPED,
];

/// The most characters a JSON encoder may spend on `s` as a quoted string, counted
/// as AWS may count them (UTF-16 units): `"` and `\` two each, the short escapes
/// two, any other control character six (`\u00XX`), a character outside the Basic
/// Multilingual Plane two, everything else one.
pub fn worst_json_string_len(s: &str) -> usize {
    2 + s
        .chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf16(),
        })
        .sum::<usize>()
}

/// The longest the ECS `overrides` JSON Step Functions sends can be, for one
/// container override with `TASK_TOKEN` (2,048 characters) and `env`.
pub fn worst_override_len(container: &str, env: &[(&str, &str)]) -> usize {
    let token = "T".repeat(baton::limits::TASK_TOKEN_MAX_CHARS);
    let mut entries = vec![("TASK_TOKEN", token.as_str())];
    entries.extend_from_slice(env);
    // {"containerOverrides":[{"name":…,"environment":[{"name":…,"value":…},…]}]}
    let fixed = r#"{"containerOverrides":[{"name":,"environment":[]}]}"#.len();
    let entry_fixed = r#"{"name":,"value":}"#.len();
    fixed
        + worst_json_string_len(container)
        + entries
            .iter()
            .map(|(k, v)| entry_fixed + worst_json_string_len(k) + worst_json_string_len(v))
            .sum::<usize>()
        + entries.len().saturating_sub(1)
}
