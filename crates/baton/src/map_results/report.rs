//! The failure policy (a Distributed Map's tolerated failure threshold) and the
//! bounded cause of `Baton.ItemsFailed`.

use serde_json::{Value, json};

use super::spill::Counts;
use crate::error::Error;
use crate::limits::{aws_len, truncate_chars};

/// The most characters the cause of `Baton.ItemsFailed` takes, at any item count:
/// an eighth of Step Functions' 32,768, so it fits beside whatever a state machine
/// wraps it in.
pub const ITEMS_FAILED_CAUSE_MAX_CHARS: usize = 4_000;

/// How many items may fail before the whole fails, as a Distributed Map's
/// `ToleratedFailurePercentage` and `ToleratedFailureCount` say: it fails when the
/// share of items that failed or never ran EXCEEDS `percentage`, or their number
/// exceeds `count`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// 0 to 100.
    pub percentage: f64,
    pub count: u64,
}

impl Default for Tolerance {
    /// AWS's default: no failure tolerated.
    fn default() -> Tolerance {
        Tolerance::NONE
    }
}

impl Tolerance {
    /// No item may fail (AWS's default).
    pub const NONE: Tolerance = Tolerance {
        percentage: 0.0,
        count: 0,
    };

    /// As a Map state states it: either, both or neither of
    /// `ToleratedFailurePercentage` and `ToleratedFailureCount`; one left out
    /// does not limit (neither: no failure tolerated).
    pub fn of_map(percentage: Option<f64>, count: Option<u64>) -> Tolerance {
        match (percentage, count) {
            (None, None) => Tolerance::NONE,
            (p, c) => Tolerance {
                percentage: p.unwrap_or(100.0),
                count: c.unwrap_or(u64::MAX),
            },
        }
    }

    pub fn validate(&self) -> Result<(), Error> {
        if !(0.0..=100.0).contains(&self.percentage) {
            return Err(Error::InvalidInput(format!(
                "the tolerated failure percentage must be 0 to 100, got {}",
                self.percentage
            )));
        }
        Ok(())
    }

    /// Do `not_done` items of `total` exceed the tolerance? (Computed as
    /// [`crate::fanin::gather`] does the percentage: `failed × 100 > percentage × total`.)
    pub fn exceeded(&self, total: u64, not_done: u64) -> bool {
        not_done as f64 * 100.0 > self.percentage * total as f64 || not_done > self.count
    }
}

/// The cause of `Baton.ItemsFailed`: JSON of the counts, the tolerance, where the
/// whole failure list is, and the first failures, within
/// [`ITEMS_FAILED_CAUSE_MAX_CHARS`] however many items failed and however long
/// their texts. The failures are cut before anything else, then left out; the
/// counts are always there.
pub(super) fn items_failed_cause(
    counts: &Counts,
    tolerance: &Tolerance,
    failure_list: Option<&str>,
    map_run: Option<&str>,
    first_failures: &[Value],
) -> String {
    let message = format!(
        "{} of {} items failed or did not run ({} failed, {} pending), more than tolerated",
        counts.not_done(),
        counts.total(),
        counts.failed,
        counts.pending
    );
    let build = |failures: usize, field_max: usize, extras: bool| {
        let mut cause = json!({
            "message": message,
            "total": counts.total(),
            "succeeded": counts.succeeded,
            "failed": counts.failed,
            "pending": counts.pending,
            "toleratedFailurePercentage": tolerance.percentage,
            "toleratedFailureCount": (tolerance.count != u64::MAX).then_some(tolerance.count),
        });
        if extras {
            if let Some(uri) = failure_list {
                cause["failures"] = json!(uri);
            }
            if let Some(arn) = map_run {
                cause["mapRunArn"] = json!(arn);
            }
        }
        let first: Vec<Value> = first_failures
            .iter()
            .take(failures)
            .map(|f| shorten(f, field_max))
            .collect();
        if !first.is_empty() {
            cause["firstFailures"] = json!(first);
        }
        cause.to_string()
    };
    let attempts = [(5, 300), (5, 120), (3, 80), (1, 64), (0, 0)];
    for (failures, field_max) in attempts {
        let text = build(failures, field_max, true);
        if aws_len(&text) <= ITEMS_FAILED_CAUSE_MAX_CHARS {
            return text;
        }
    }
    // Only a bucket and key of improbable length get here.
    build(0, 0, false)
}

/// A failure line with its strings cut to `max` characters (an ARN to 256).
fn shorten(failure: &Value, max: usize) -> Value {
    let Some(fields) = failure.as_object() else {
        return Value::Null;
    };
    let mut out = serde_json::Map::new();
    for (key, value) in fields {
        let value = match value {
            Value::String(s) => {
                let limit = if key.contains("xecution") {
                    max.max(256)
                } else {
                    max
                };
                Value::String(truncate_chars(s, limit).to_string())
            }
            other => other.clone(),
        };
        out.insert(key.clone(), value);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_is_exceeded_by_either_the_share_or_the_count() {
        let t = Tolerance {
            percentage: 5.0,
            count: 3,
        };
        // 1 of 20 is 5 %: not more than 5 %.
        assert!(!t.exceeded(20, 1));
        assert!(t.exceeded(19, 1), "5.3 %");
        assert!(!t.exceeded(1_000, 3));
        assert!(t.exceeded(1_000, 4), "the count");
        assert!(!Tolerance::NONE.exceeded(10, 0));
        assert!(Tolerance::NONE.exceeded(10, 1));
        assert!(
            !Tolerance::NONE.exceeded(0, 0),
            "nothing to do is no failure"
        );
        // One of the two given: the other does not limit.
        assert!(!Tolerance::of_map(Some(10.0), None).exceeded(100, 10));
        assert!(Tolerance::of_map(Some(10.0), None).exceeded(100, 11));
        assert!(!Tolerance::of_map(None, Some(50)).exceeded(60, 50));
        assert!(Tolerance::of_map(None, Some(50)).exceeded(1_000_000, 51));
        assert_eq!(Tolerance::of_map(None, None), Tolerance::NONE);
        assert!(!Tolerance::of_map(Some(100.0), None).exceeded(5, 5));
        // Consistent with the fan-in's percentage.
        for (total, failed, pct) in [
            (20u64, 1u64, 5.0),
            (20, 1, 4.0),
            (3, 1, 33.3),
            (3, 1, 33.34),
        ] {
            let items: Vec<Value> = (0..total)
                .map(|i| {
                    if i < failed {
                        json!({"failed": {"Error": "e"}})
                    } else {
                        json!({"inline": 1})
                    }
                })
                .collect();
            assert_eq!(
                crate::fanin::gather(&items, pct).is_err(),
                Tolerance::of_map(Some(pct), None).exceeded(total, failed),
                "{failed}/{total} at {pct}"
            );
        }
        for bad in [-0.1, 100.1, f64::NAN] {
            assert!(
                Tolerance {
                    percentage: bad,
                    count: 0
                }
                .validate()
                .is_err()
            );
        }
    }

    #[test]
    fn the_cause_stays_bounded_at_100000_failures_whatever_their_text() {
        let counts = Counts {
            succeeded: 1,
            failed: 90_000,
            pending: 10_000,
            executions: 100_001,
        };
        let nasty = "\u{1}\"\\é𝄞".repeat(2_000);
        let first: Vec<Value> = (0..5)
            .map(|i| {
                json!({"index": i, "status": "FAILED", "execution": format!("arn:aws:states:us-east-1:123456789012:execution:sm/Map:{}", "x".repeat(200)),
                       "error": nasty.clone(), "cause": nasty.clone(), "taskExecution": nasty.clone()})
            })
            .collect();
        let uri = "s3://bucket/executions/run/merge/failed.jsonl";
        let arn = "arn:aws:states:us-east-1:123456789012:mapRun:sm/Map:0f0f";
        let cause = items_failed_cause(
            &counts,
            &Tolerance::of_map(Some(10.0), None),
            Some(uri),
            Some(arn),
            &first,
        );
        assert!(
            aws_len(&cause) <= ITEMS_FAILED_CAUSE_MAX_CHARS,
            "{}",
            aws_len(&cause)
        );
        let v: Value = serde_json::from_str(&cause).unwrap();
        assert_eq!(v["failed"], 90_000);
        assert_eq!(v["pending"], 10_000);
        assert_eq!(v["total"], 100_001);
        assert_eq!(v["failures"], uri);
        assert_eq!(v["mapRunArn"], arn);
        assert_eq!(v["toleratedFailureCount"], Value::Null);
        assert!(!v["firstFailures"].as_array().unwrap().is_empty());
        assert_eq!(v["firstFailures"][0]["index"], 0);

        // Plain failures keep all five with readable causes.
        let plain: Vec<Value> = (0..5)
            .map(|i| json!({"index": i, "execution": "arn:e", "error": "Baton.WorkerError", "cause": "x".repeat(1_024)}))
            .collect();
        let cause = items_failed_cause(&counts, &Tolerance::NONE, Some(uri), None, &plain);
        let v: Value = serde_json::from_str(&cause).unwrap();
        assert_eq!(v["firstFailures"].as_array().unwrap().len(), 5);
        assert_eq!(v["firstFailures"][4]["cause"].as_str().unwrap().len(), 300);
        assert_eq!(v["toleratedFailureCount"], 0);

        // Even a key near S3's 1,024 bytes of escapes leaves the counts.
        let long = format!("s3://b/{}", "\u{1}".repeat(1_000));
        let cause = items_failed_cause(&counts, &Tolerance::NONE, Some(&long), Some(&long), &first);
        assert!(aws_len(&cause) <= ITEMS_FAILED_CAUSE_MAX_CHARS);
        assert_eq!(
            serde_json::from_str::<Value>(&cause).unwrap()["failed"],
            90_000
        );
    }
}
