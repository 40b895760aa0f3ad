//! The Payload claim check (a contract) and the ECS override budget.
//!
//! A Payload is `{"inline": <any JSON>}`, `{"s3": {bucket, key, size, …}}` or
//! `{"manifest": [<Payload>, …]}` (many inputs, read one after another: a fan-in).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;
use crate::limits::{ECS_OVERRIDES_MAX_CHARS, TASK_TOKEN_MAX_CHARS, aws_len};

/// Data handed from one step to the next: inline, or a verified pointer to S3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Payload {
    Inline(Value),
    S3(S3Pointer),
    /// Many Payloads, read one after another, each verified (a fan-out's results).
    /// Its entries are inline data or pointers, never manifests. A manifest too large
    /// for an override is stored as JSON and passed as a pointer whose content type is
    /// [`MANIFEST_CONTENT_TYPE`].
    Manifest(Vec<Payload>),
}

/// The content type of an object that holds a manifest Payload's JSON: a pointer with
/// it is read as the manifest, not as data.
pub const MANIFEST_CONTENT_TYPE: &str = "application/vnd.baton.manifest+json";

/// Where an object lives and how to know it is the one that was meant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Pointer {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    /// Lowercase hex sha256 of the whole object; set on everything Baton writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Pins a user's object that Baton did not write (sent as `If-Match`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

impl Payload {
    /// Parse a Payload from JSON text, checking the pointer's fields.
    pub fn parse(text: &str) -> Result<Payload, Error> {
        let payload: Payload = serde_json::from_str(text)
            .map_err(|e| Error::InvalidInput(format!("not a Baton Payload: {e}")))?;
        payload.validate()?;
        Ok(payload)
    }

    /// Interpret a JSON value as a Payload. `Ok(None)` when the value does not
    /// claim to be one (an object whose only key is `inline` or `s3` claims it).
    pub fn from_value(value: &Value) -> Result<Option<Payload>, Error> {
        let claims = value.as_object().is_some_and(|o| {
            o.len() == 1
                && (o.contains_key("inline") || o.contains_key("s3") || o.contains_key("manifest"))
        });
        if !claims {
            return Ok(None);
        }
        let payload: Payload = serde_json::from_value(value.clone())
            .map_err(|e| Error::InvalidInput(format!("malformed Baton Payload: {e}")))?;
        payload.validate()?;
        Ok(Some(payload))
    }

    pub fn validate(&self) -> Result<(), Error> {
        match self {
            Payload::Inline(_) => Ok(()),
            Payload::S3(pointer) => pointer.validate(),
            Payload::Manifest(entries) => {
                for (i, entry) in entries.iter().enumerate() {
                    if matches!(entry, Payload::Manifest(_)) {
                        return Err(Error::InvalidInput(format!(
                            "manifest entry {i} is itself a manifest: entries are inline data or pointers"
                        )));
                    }
                    entry.validate()?;
                }
                Ok(())
            }
        }
    }

    /// Does this pointer name a stored manifest ([`MANIFEST_CONTENT_TYPE`])?
    pub fn is_stored_manifest(&self) -> bool {
        matches!(self, Payload::S3(p) if p.content_type.as_deref() == Some(MANIFEST_CONTENT_TYPE))
    }

    pub fn is_s3(&self) -> bool {
        matches!(self, Payload::S3(_))
    }

    /// Compact JSON, as it goes into `BATON_INPUT` or `SendTaskSuccess`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a Payload always serialises")
    }

    /// Characters the Payload takes as compact JSON ([`aws_len`]).
    pub fn json_chars(&self) -> usize {
        aws_len(&self.to_json())
    }
}

impl S3Pointer {
    pub fn validate(&self) -> Result<(), Error> {
        if self.bucket.is_empty() || self.key.is_empty() {
            return Err(Error::InvalidInput(
                "an s3 Payload needs a non-empty bucket and key".into(),
            ));
        }
        if let Some(sha) = &self.sha256
            && !is_sha256_hex(sha)
        {
            return Err(Error::InvalidInput(format!(
                "s3 Payload sha256 must be 64 lowercase hex digits, got {sha:?}"
            )));
        }
        Ok(())
    }

    pub fn uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The bytes a reader sees for inline data: a JSON string is its text, anything
/// else its compact JSON. Staging inline data to S3 stores exactly these bytes, so
/// a job reads the same input whether it came inline or through a pointer.
pub fn inline_bytes(value: &Value) -> Vec<u8> {
    match value {
        Value::String(s) => s.as_bytes().to_vec(),
        other => serde_json::to_vec(other).expect("JSON values serialise"),
    }
}

/// Content type for [`inline_bytes`] of `value`.
pub fn inline_content_type(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "text/plain; charset=utf-8",
        _ => "application/json",
    }
}

/// An `s3://bucket/key-or-prefix` location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub key: String,
}

impl S3Location {
    pub fn parse(uri: &str) -> Result<S3Location, Error> {
        let rest = uri
            .strip_prefix("s3://")
            .ok_or_else(|| Error::InvalidInput(format!("expected s3://bucket/key, got {uri:?}")))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::InvalidInput(format!("no bucket in {uri:?}")));
        }
        Ok(S3Location {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    /// `s3://bucket/key` as text.
    pub fn uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// One environment entry of a container override.
#[derive(Debug, Clone, Serialize)]
pub struct EnvEntry<'a> {
    pub name: &'a str,
    pub value: &'a str,
}

/// The variable the task state machine sets to its own execution's ARN
/// (`$$.Execution.Id`, in statemachine/task.asl.json's RunTask overrides).
pub const EXECUTION_VARIABLE: &str = "BATON_EXECUTION";

/// Characters the ECS `overrides` object takes, as Step Functions sends it, for one
/// container override whose environment is `TASK_TOKEN` and `BATON_EXECUTION` (each
/// at its longest) plus `env`. JSON formatting and string escaping are counted, in
/// [`aws_len`] units.
pub fn override_chars(container: &str, env: &[EnvEntry<'_>]) -> usize {
    let token = "T".repeat(TASK_TOKEN_MAX_CHARS);
    let execution = "E".repeat(crate::limits::EXECUTION_ARN_MAX_CHARS);
    let mut environment = vec![
        EnvEntry {
            name: "TASK_TOKEN",
            value: &token,
        },
        EnvEntry {
            name: EXECUTION_VARIABLE,
            value: &execution,
        },
    ];
    environment.extend(env.iter().cloned());
    let overrides = serde_json::json!({
        "containerOverrides": [{ "name": container, "environment": environment }]
    });
    aws_len(&serde_json::to_string(&overrides).expect("override JSON serialises"))
}

/// Does the override carrying `BATON_INPUT = payload` (beside `other_env` and a
/// task token of the longest kind) fit ECS's 8,192-character limit?
pub fn fits_override(container: &str, other_env: &[EnvEntry<'_>], payload: &Payload) -> bool {
    let json = payload.to_json();
    let mut env = other_env.to_vec();
    env.push(EnvEntry {
        name: "BATON_INPUT",
        value: &json,
    });
    override_chars(container, &env) <= ECS_OVERRIDES_MAX_CHARS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_is_a_list_of_payloads_that_are_not_manifests() {
        let text = r#"{"manifest":[{"inline":"a"},{"s3":{"bucket":"b","key":"k","size":3}}]}"#;
        let payload = Payload::parse(text).unwrap();
        assert!(matches!(&payload, Payload::Manifest(entries) if entries.len() == 2));
        assert_eq!(payload.to_json(), text, "round trip");
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(Payload::from_value(&value).unwrap(), Some(payload));
        assert!(Payload::parse(r#"{"manifest":[{"manifest":[]}]}"#).is_err());
        assert!(
            Payload::parse(r#"{"manifest":[{"s3":{"bucket":"","key":"k","size":1}}]}"#).is_err()
        );
        assert_eq!(
            Payload::parse(r#"{"manifest":[]}"#).unwrap(),
            Payload::Manifest(vec![])
        );
    }
    use serde_json::json;

    /// Found by the `payload` fuzz target: serde_json's default float parser can
    /// be one unit in the last place off, so an inline number changed on its way
    /// through print and parse. `float_roundtrip` makes parsing exact.
    #[test]
    fn inline_numbers_survive_print_and_parse_exactly() {
        let text = format!(r#"{{"inline":{}{}00}}"#, "6".repeat(125), "3".repeat(10));
        let payload = Payload::parse(&text).unwrap();
        let again = Payload::parse(&payload.to_json()).unwrap();
        assert_eq!(again, payload);
        for x in [
            0.1_f64,
            1.0 / 3.0,
            2.2250738585072014e-308,
            1.7976931348623157e308,
            5e-324,
        ] {
            let payload = Payload::parse(&json!({ "inline": x }).to_string()).unwrap();
            assert_eq!(Payload::parse(&payload.to_json()).unwrap(), payload);
        }
    }

    fn pointer() -> S3Pointer {
        S3Pointer {
            bucket: "b".into(),
            key: "executions/e1/task1/output".into(),
            size: 123,
            sha256: Some("a".repeat(64)),
            etag: Some("\"abc\"".into()),
            version_id: Some("v1".into()),
            content_type: Some("text/plain".into()),
        }
    }

    #[test]
    fn inline_round_trip() {
        let p = Payload::Inline(json!({"a": [1, 2, {"b": null}], "s": "é"}));
        let text = p.to_json();
        assert!(text.starts_with("{\"inline\":"));
        assert_eq!(Payload::parse(&text).unwrap(), p);
    }

    #[test]
    fn s3_round_trip_uses_contract_field_names() {
        let p = Payload::S3(pointer());
        let text = p.to_json();
        let v: Value = serde_json::from_str(&text).unwrap();
        let s3 = &v["s3"];
        for field in [
            "bucket",
            "key",
            "size",
            "sha256",
            "etag",
            "versionId",
            "contentType",
        ] {
            assert!(s3.get(field).is_some(), "missing {field} in {text}");
        }
        assert_eq!(Payload::parse(&text).unwrap(), p);
    }

    #[test]
    fn optional_pointer_fields_are_omitted() {
        let p = Payload::S3(S3Pointer {
            sha256: None,
            etag: None,
            version_id: None,
            content_type: None,
            ..pointer()
        });
        assert_eq!(
            p.to_json(),
            r#"{"s3":{"bucket":"b","key":"executions/e1/task1/output","size":123}}"#
        );
    }

    #[test]
    fn malformed_payloads_are_invalid_input() {
        for bad in [
            r#"{}"#,
            r#"{"inline": 1, "s3": {}}"#,
            r#"{"s3": {"bucket": "b", "key": "k"}}"#,
            r#"{"s3": {"bucket": "", "key": "k", "size": 1}}"#,
            r#"{"s3": {"bucket": "b", "key": "k", "size": -1}}"#,
            r#"{"s3": {"bucket": "b", "key": "k", "size": 1, "sha256": "XYZ"}}"#,
            r#"{"s3": {"bucket": "b", "key": "k", "size": 1, "sha256": "ABCDEF0000000000000000000000000000000000000000000000000000000000"}}"#,
            r#"{"pointer": 1}"#,
            "not json",
        ] {
            let err = Payload::parse(bad).unwrap_err();
            assert_eq!(err.name(), "Baton.InvalidInput", "{bad}");
        }
    }

    #[test]
    fn only_single_key_objects_claim_to_be_payloads() {
        assert_eq!(Payload::from_value(&json!({"result": 1})).unwrap(), None);
        assert_eq!(Payload::from_value(&json!([1, 2])).unwrap(), None);
        assert_eq!(
            Payload::from_value(&json!({"inline": 1, "x": 2})).unwrap(),
            None
        );
        assert_eq!(
            Payload::from_value(&json!({"inline": 1})).unwrap(),
            Some(Payload::Inline(json!(1)))
        );
        assert!(Payload::from_value(&json!({"s3": "s3://b/k"})).is_err());
    }

    #[test]
    fn inline_bytes_of_a_string_is_its_text() {
        assert_eq!(inline_bytes(&json!("hé")), "hé".as_bytes());
        assert_eq!(inline_bytes(&json!({"a": 1})), br#"{"a":1}"#);
    }

    #[test]
    fn s3_uris_parse() {
        let loc = S3Location::parse("s3://bucket/a/b.txt").unwrap();
        assert_eq!(
            (loc.bucket.as_str(), loc.key.as_str()),
            ("bucket", "a/b.txt")
        );
        assert_eq!(S3Location::parse("s3://bucket").unwrap().key, "");
        for bad in ["bucket/key", "s3:///key", "https://b/k", ""] {
            assert!(S3Location::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn override_size_counts_token_and_escaping() {
        let empty = override_chars("worker", &[]);
        // {"containerOverrides":[{"name":"worker","environment":[{"name":"TASK_TOKEN","value":"T…"},
        //   {"name":"BATON_EXECUTION","value":"E…"}]}]}
        assert_eq!(
            empty,
            91 + TASK_TOKEN_MAX_CHARS + 38 + crate::limits::EXECUTION_ARN_MAX_CHARS
        );
        let with_quote = override_chars(
            "worker",
            &[EnvEntry {
                name: "A",
                value: "\"",
            }],
        );
        let with_letter = override_chars(
            "worker",
            &[EnvEntry {
                name: "A",
                value: "x",
            }],
        );
        assert_eq!(
            with_quote,
            with_letter + 1,
            "a quote is escaped to two characters"
        );
    }

    /// Find the inline string length at which the override is exactly at the limit.
    fn inline_of_len(n: usize) -> Payload {
        Payload::Inline(Value::String("x".repeat(n)))
    }

    #[test]
    fn budget_edge_is_exactly_8192() {
        let other = [EnvEntry {
            name: "BATON_OUTPUT",
            value: "s3://bucket/executions/e/task1/",
        }];
        let base = {
            let json = inline_of_len(0).to_json();
            let mut env = other.to_vec();
            env.push(EnvEntry {
                name: "BATON_INPUT",
                value: &json,
            });
            override_chars("worker", &env)
        };
        let room = ECS_OVERRIDES_MAX_CHARS - base;
        assert!(fits_override("worker", &other, &inline_of_len(room)));
        assert!(!fits_override("worker", &other, &inline_of_len(room + 1)));
        // and the count at the edge really is 8,192
        let json = inline_of_len(room).to_json();
        let mut env = other.to_vec();
        env.push(EnvEntry {
            name: "BATON_INPUT",
            value: &json,
        });
        assert_eq!(override_chars("worker", &env), ECS_OVERRIDES_MAX_CHARS);
    }

    #[test]
    fn a_pointer_always_fits() {
        assert!(fits_override("worker", &[], &Payload::S3(pointer())));
    }
}
