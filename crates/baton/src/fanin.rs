//! Fan-in: the results of a Map over Baton tasks gathered into one manifest Payload,
//! under a stated failure policy.
//!
//! Each item is the task's output Payload (or `{"output": <Payload>}`), or
//! `{"failed": {"Error", "Cause", "Execution", …}}` for an item whose task failed (the
//! Map's iterator catches the failure, so the siblings keep running). The fan-out
//! example keeps a failed item's `Error` and `Execution` (the item's own execution,
//! whose description holds its cause) and no `Cause`: a cause may take 32,768
//! characters, and every item's result must fit the Map's 256 KiB. The manifest holds
//! the successful outputs in item order; more failures than
//! `toleratedFailurePercentage` of the items is [`Error::ItemsFailed`], whose text is
//! a JSON report of every failed item.

use serde_json::{Value, json};

use crate::error::Error;
use crate::payload::Payload;

/// A failed item: its index in the Map's results, its error, its cause when the item
/// kept it, and the item's execution (where its cause is) when it named it.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemFailure {
    pub index: usize,
    pub error: String,
    pub cause: String,
    pub execution: String,
}

/// What a fan-in gathered.
#[derive(Debug, Clone, PartialEq)]
pub struct Gathered {
    /// `{"manifest": [...]}`: the successful items' outputs, in item order.
    pub manifest: Payload,
    pub failed: Vec<ItemFailure>,
    pub total: usize,
}

impl Gathered {
    /// The per-item report (JSON), as logged and as the cause of `Baton.ItemsFailed`.
    pub fn report(&self, tolerated_percent: f64) -> String {
        let items: Vec<Value> = self
            .failed
            .iter()
            .map(|f| {
                let mut item = json!({"index": f.index, "error": f.error});
                if !f.cause.is_empty() {
                    item["cause"] = json!(f.cause);
                }
                if !f.execution.is_empty() {
                    item["execution"] = json!(f.execution);
                }
                item
            })
            .collect();
        crate::limits::fit_json_cause(
            &json!({
                "total": self.total,
                "failed": self.failed.len(),
                "toleratedFailurePercentage": tolerated_percent,
                "items": items,
            }),
            2_000,
        )
    }
}

/// Gather `items` into a manifest; `Err(ItemsFailed)` when more than
/// `tolerated_percent` (0 to 100) of them failed.
pub fn gather(items: &[Value], tolerated_percent: f64) -> Result<Gathered, Error> {
    if !(0.0..=100.0).contains(&tolerated_percent) {
        return Err(Error::InvalidInput(format!(
            "toleratedFailurePercentage must be 0 to 100, got {tolerated_percent}"
        )));
    }
    let mut outputs = Vec::new();
    let mut failed = Vec::new();
    for (index, item) in items.iter().enumerate() {
        if let Some(failure) = item
            .get("failed")
            .filter(|_| item.as_object().is_some_and(|o| o.len() == 1))
        {
            let field = |upper: &str, lower: &str| {
                failure
                    .get(upper)
                    .or_else(|| failure.get(lower))
                    .map(|v| {
                        v.as_str()
                            .map(String::from)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .unwrap_or_default()
            };
            failed.push(ItemFailure {
                index,
                error: field("Error", "error"),
                cause: field("Cause", "cause"),
                execution: field("Execution", "execution"),
            });
            continue;
        }
        let output = match item
            .get("output")
            .filter(|_| item.as_object().is_some_and(|o| o.len() == 1))
        {
            Some(output) => output,
            None => item,
        };
        match Payload::from_value(output)? {
            Some(Payload::Manifest(_)) => {
                return Err(Error::InvalidInput(format!(
                    "item {index} is a manifest: a fan-in gathers task outputs"
                )));
            }
            Some(payload) => outputs.push(payload),
            None => {
                return Err(Error::InvalidInput(format!(
                    "item {index} is neither a Payload, {{\"output\": <Payload>}} nor {{\"failed\": …}}"
                )));
            }
        }
    }
    let gathered = Gathered {
        manifest: Payload::Manifest(outputs),
        total: items.len(),
        failed,
    };
    if gathered.failed.len() as f64 * 100.0 > tolerated_percent * gathered.total as f64 {
        return Err(Error::ItemsFailed(gathered.report(tolerated_percent)));
    }
    Ok(gathered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(key: &str) -> Value {
        json!({"s3": {"bucket": "b", "key": key, "size": 1}})
    }

    fn failed(error: &str) -> Value {
        json!({"failed": {"Error": error, "Cause": "{\"exitCode\":3}", "Status": "FAILED"}})
    }

    #[test]
    fn outputs_keep_item_order_and_both_shapes_are_read() {
        let items = [ok("a"), json!({"output": ok("b")}), json!({"inline": "c"})];
        let g = gather(&items, 0.0).unwrap();
        let Payload::Manifest(entries) = &g.manifest else {
            panic!()
        };
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[1], Payload::from_value(&ok("b")).unwrap().unwrap());
        assert!(g.failed.is_empty());
    }

    #[test]
    fn the_policy_decides_the_whole() {
        let mut items: Vec<Value> = (0..19).map(|i| ok(&format!("k{i}"))).collect();
        items.insert(7, failed("Baton.ContainerExited"));
        let err = gather(&items, 0.0).unwrap_err();
        assert_eq!(err.name(), "Baton.ItemsFailed");
        let report: Value = serde_json::from_str(&err.to_string()).unwrap();
        assert_eq!(
            (report["total"].as_u64(), report["failed"].as_u64()),
            (Some(20), Some(1))
        );
        assert_eq!(report["items"][0]["index"], 7);
        assert_eq!(report["items"][0]["error"], "Baton.ContainerExited");
        // 1 of 20 is 5 %: tolerated at 5, not at 4.
        let g = gather(&items, 5.0).unwrap();
        assert!(matches!(&g.manifest, Payload::Manifest(e) if e.len() == 19));
        assert_eq!(g.failed[0].index, 7);
        assert!(gather(&items, 4.0).is_err());
        assert!(gather(&items, 101.0).is_err());
    }

    #[test]
    fn a_failure_kept_as_its_error_and_execution_is_reported_so() {
        // What the fan-out example keeps of a failed item: no cause, its execution.
        let execution = "arn:aws:states:eu-west-1:123456789012:execution:baton-Task:0f-item-1";
        let items = [
            ok("a"),
            json!({"failed": {"Error": "Baton.TaskStopped", "Execution": execution}}),
        ];
        let err = gather(&items, 0.0).unwrap_err();
        let report: Value = serde_json::from_str(&err.to_string()).unwrap();
        assert_eq!(
            report["items"][0],
            json!({"index": 1, "error": "Baton.TaskStopped", "execution": execution})
        );
        let g = gather(&items, 50.0).unwrap();
        assert_eq!(g.failed[0].execution, execution);
        assert_eq!(g.failed[0].cause, "");
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            json!(3),
            json!({"x": 1}),
            json!({"manifest": []}),
            json!({"output": 1}),
        ] {
            assert_eq!(
                gather(std::slice::from_ref(&bad), 100.0)
                    .unwrap_err()
                    .name(),
                "Baton.InvalidInput",
                "{bad}"
            );
        }
        assert!(
            gather(&[], 0.0).unwrap().failed.is_empty(),
            "no items: an empty manifest"
        );
    }
}
