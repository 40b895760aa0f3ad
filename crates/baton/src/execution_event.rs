//! "Step Functions Execution Status Change" events: an execution of the stack's
//! state machines ended (the watchdog cleans up after it).
//!
//! Shape: Step Functions docs, "Automating Step Functions event delivery with
//! EventBridge" (`startDate`/`stopDate` in epoch milliseconds).

use aws_smithy_types::DateTime;
use serde::{Deserialize, Serialize};

use crate::handoff::HandoffConfig;
use crate::payload::S3Location;

pub const SOURCE: &str = "aws.states";
pub const DETAIL_TYPE: &str = "Step Functions Execution Status Change";

/// `detail` of the event; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExecutionStatusChange {
    pub execution_arn: Option<String>,
    pub state_machine_arn: Option<String>,
    pub name: Option<String>,
    pub status: Option<String>,
    pub start_date: Option<i64>,
    pub stop_date: Option<i64>,
}

/// The `StartedBy` that Baton's state machines give every ECS task they run for an
/// execution: the MD5 of the execution's ARN in lowercase hex, as
/// `States.Hash($$.Execution.Id, 'MD5')` writes it (32 characters; RunTask allows
/// 36). `ListTasks --started-by` then finds an execution's tasks without looking at
/// any other task in the cluster. Identity, not security: nothing trusts it.
pub fn started_by(execution_arn: &str) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(execution_arn.as_bytes()))
}

/// Is this EventBridge event an execution status change?
pub fn is_status_change(event: &serde_json::Value) -> bool {
    event.get("detail-type").and_then(|t| t.as_str()) == Some(DETAIL_TYPE)
}

impl ExecutionStatusChange {
    /// SUCCEEDED, FAILED, TIMED_OUT or ABORTED: nothing of it runs any more.
    pub fn has_ended(&self) -> bool {
        matches!(
            self.status.as_deref(),
            Some("SUCCEEDED" | "FAILED" | "TIMED_OUT" | "ABORTED")
        )
    }

    /// Where the ended execution kept its data (`s3://<bucket>/<prefix><name>/`) and
    /// when it stopped: multipart uploads there begun before then are abandoned (a
    /// task killed mid-upload whose STOPPED event never came). `None` while it runs,
    /// or when the event lacks a valid name or stop date.
    pub fn abandoned_uploads_scope(
        &self,
        config: &HandoffConfig,
    ) -> Option<(S3Location, DateTime)> {
        if !self.has_ended() {
            return None;
        }
        let layout = config.layout(self.name.as_deref()?).ok()?;
        let stopped = DateTime::from_millis(self.stop_date?);
        Some((
            S3Location {
                bucket: config.bucket.clone(),
                key: layout.key(""),
            },
            stopped,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(status: &str, name: &str) -> ExecutionStatusChange {
        ExecutionStatusChange {
            name: Some(name.into()),
            status: Some(status.into()),
            stop_date: Some(1_796_392_801_250),
            ..Default::default()
        }
    }

    #[test]
    fn started_by_is_the_lowercase_md5_of_the_execution_arn() {
        // RFC 1321's test suite, and the 36-character limit of RunTask's startedBy.
        assert_eq!(started_by(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(started_by("abc"), "900150983cd24fb0d6963f7d28e17f72");
        let arn =
            "arn:aws:states:eu-west-1:123456789012:execution:baton-pipeline:nightly-2026-12-04";
        let id = started_by(arn);
        assert!(
            id.len() <= 36
                && id
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    #[test]
    fn an_ended_execution_scopes_its_own_prefix_and_stop_time() {
        let config = HandoffConfig::for_bucket("b");
        for status in ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"] {
            let (location, at) = ended(status, "run-1")
                .abandoned_uploads_scope(&config)
                .unwrap();
            assert_eq!(
                (location.bucket.as_str(), location.key.as_str()),
                ("b", "executions/run-1/")
            );
            assert_eq!(at.as_secs_f64(), 1_796_392_801.25);
        }
        assert_eq!(
            ended("RUNNING", "run-1").abandoned_uploads_scope(&config),
            None
        );
        assert_eq!(
            ended("FAILED", "a/b").abandoned_uploads_scope(&config),
            None,
            "a name that would escape its prefix"
        );
        let mut no_stop = ended("FAILED", "run-1");
        no_stop.stop_date = None;
        assert_eq!(no_stop.abandoned_uploads_scope(&config), None);
    }

    #[test]
    fn status_changes_are_told_from_ecs_events() {
        assert!(is_status_change(
            &serde_json::json!({"detail-type": DETAIL_TYPE})
        ));
        assert!(!is_status_change(
            &serde_json::json!({"detail-type": "ECS Task State Change"})
        ));
    }
}
