//! The run's metrics, as one CloudWatch embedded metric format (EMF) line.
//!
//! At the end of every run the worker prints one JSON object on its stdout, the
//! task's log (a job's output never goes there: behind `exec` the child's stdout is
//! the output, read through a pipe). The awslogs driver ships each line as a log
//! event with PutLogEvents, and CloudWatch Logs extracts EMF metrics from such
//! events without the `x-amzn-logs-format: json/emf` header (AWS: "Using the
//! PutLogEvents API to send manually-created embedded metric format logs"), so on
//! Fargate the metrics need no agent or sidecar.
//!
//! Dimensions stay bounded: `Stack` (`BATON_STACK`, the CloudFormation stack) and
//! `Step` (the step folder of `BATON_OUTPUT`), never the execution, which is a
//! plain property of the event (searchable in Logs Insights, not a metric).

use serde_json::{Map, Value, json};

/// The CloudWatch namespace of Baton's metrics.
pub const NAMESPACE: &str = "Baton";

/// What a run measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunMetrics {
    /// Bytes of input the job read (verified).
    pub bytes_read: u64,
    /// Bytes of output the upload took.
    pub bytes_written: u64,
    /// From the worker's start to its report.
    pub seconds: f64,
    /// Peak memory in bytes, and where it was read.
    pub peak_memory: Option<(u64, &'static str)>,
}

/// Where the run belongs: the dimensions' values and the properties around them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunContext {
    /// `BATON_STACK`: the stack's name (the template sets it).
    pub stack: Option<String>,
    /// The step folder of `BATON_OUTPUT` (`executions/<execution>/<step>/`).
    pub step: Option<String>,
    pub execution: Option<String>,
    pub job: String,
    pub task_arn: Option<String>,
}

/// The EMF document for one run ending with `exit_code`, at `timestamp_ms`
/// (milliseconds since the epoch).
pub fn emf(run: &RunMetrics, at: &RunContext, exit_code: u8, timestamp_ms: u64) -> Value {
    let seconds = run.seconds.max(0.0);
    let per_second = |bytes: u64| {
        if seconds > 0.0 {
            bytes as f64 / seconds
        } else {
            0.0
        }
    };
    let mut metrics = vec![
        ("BytesRead", "Bytes", json!(run.bytes_read)),
        ("BytesWritten", "Bytes", json!(run.bytes_written)),
        (
            "ReadThroughput",
            "Bytes/Second",
            json!(per_second(run.bytes_read)),
        ),
        (
            "WriteThroughput",
            "Bytes/Second",
            json!(per_second(run.bytes_written)),
        ),
        ("Duration", "Seconds", json!(seconds)),
    ];
    if let Some((bytes, _)) = run.peak_memory {
        metrics.push(("PeakMemory", "Bytes", json!(bytes)));
    }
    let dimensions: Vec<&str> = [
        at.stack.as_ref().map(|_| "Stack"),
        at.step.as_ref().map(|_| "Step"),
    ]
    .into_iter()
    .flatten()
    .collect();
    // Per stack, and per step within it; without a stack, per step alone.
    let sets: Vec<Vec<&str>> = match dimensions.as_slice() {
        ["Stack", "Step"] => vec![vec!["Stack"], vec!["Stack", "Step"]],
        [] => vec![vec![]],
        one => vec![one.to_vec()],
    };
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": sets,
                "Metrics": metrics
                    .iter()
                    .map(|(name, unit, _)| json!({"Name": name, "Unit": unit}))
                    .collect::<Vec<_>>(),
            }],
        }),
    );
    if let Some(stack) = &at.stack {
        doc.insert("Stack".into(), json!(stack));
    }
    if let Some(step) = &at.step {
        doc.insert("Step".into(), json!(step));
    }
    for (name, _, value) in metrics {
        doc.insert(name.into(), value);
    }
    // Properties: in the log event, not metrics or dimensions.
    doc.insert("Execution".into(), json!(at.execution));
    doc.insert("Job".into(), json!(at.job));
    doc.insert("TaskArn".into(), json!(at.task_arn));
    doc.insert("ExitCode".into(), json!(exit_code));
    if let Some((_, source)) = run.peak_memory {
        doc.insert("PeakMemorySource".into(), json!(source));
    }
    doc.insert("message".into(), json!("worker metrics"));
    Value::Object(doc)
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Print the document as one line on stdout, where the worker's log lines go.
pub fn print(doc: &Value) {
    use std::io::Write;
    let line = format!("{doc}\n");
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> RunMetrics {
        RunMetrics {
            bytes_read: 200 << 20,
            bytes_written: 100 << 20,
            seconds: 4.0,
            peak_memory: Some((96 << 20, "cgroup v2 memory.peak")),
        }
    }

    fn context(stack: Option<&str>, step: Option<&str>) -> RunContext {
        RunContext {
            stack: stack.map(String::from),
            step: step.map(String::from),
            execution: Some("run-7".into()),
            job: "exec".into(),
            task_arn: Some("arn:aws:ecs:eu-west-1:123456789012:task/c/abc".into()),
        }
    }

    /// The checks of AWS's EMF specification this document must pass: a root
    /// `_aws` with an integer `Timestamp` and `CloudWatchMetrics` directives, each
    /// with a `Namespace`, `Dimensions` (arrays of at most 30 keys) and `Metrics`
    /// (a `Name` and a `Unit` of CloudWatch's list); every dimension key and metric
    /// name a top-level member (dimension values strings, metric values numbers).
    fn assert_valid_emf(doc: &Value) {
        const UNITS: [&str; 3] = ["Bytes", "Bytes/Second", "Seconds"];
        let aws = &doc["_aws"];
        assert!(aws["Timestamp"].is_u64(), "{doc}");
        let directives = aws["CloudWatchMetrics"].as_array().expect("directives");
        assert!(!directives.is_empty());
        for directive in directives {
            let namespace = directive["Namespace"].as_str().expect("namespace");
            assert!(!namespace.is_empty() && namespace.len() <= 255);
            for set in directive["Dimensions"].as_array().expect("dimension sets") {
                let keys = set.as_array().expect("dimension set");
                assert!(keys.len() <= 30);
                for key in keys {
                    let key = key.as_str().expect("dimension key");
                    assert!(
                        doc[key].is_string(),
                        "dimension {key} is a top-level string"
                    );
                }
            }
            let metrics = directive["Metrics"].as_array().expect("metrics");
            assert!(!metrics.is_empty() && metrics.len() <= 100);
            for metric in metrics {
                let name = metric["Name"].as_str().expect("metric name");
                assert!(UNITS.contains(&metric["Unit"].as_str().expect("unit")));
                assert!(doc[name].is_number(), "metric {name} is a top-level number");
            }
        }
    }

    #[test]
    fn one_valid_emf_document_per_stack_and_step() {
        let doc = emf(
            &run(),
            &context(Some("baton"), Some("task1")),
            0,
            1_765_000_000_000,
        );
        assert_valid_emf(&doc);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Baton");
        assert_eq!(
            directive["Dimensions"],
            json!([["Stack"], ["Stack", "Step"]])
        );
        assert_eq!(doc["_aws"]["Timestamp"], 1_765_000_000_000u64);
        assert_eq!(
            (doc["Stack"].as_str(), doc["Step"].as_str()),
            (Some("baton"), Some("task1"))
        );
        assert_eq!(doc["BytesRead"], 200u64 << 20);
        assert_eq!(doc["BytesWritten"], 100u64 << 20);
        assert_eq!(doc["ReadThroughput"], 50.0 * 1048576.0);
        assert_eq!(doc["WriteThroughput"], 25.0 * 1048576.0);
        assert_eq!(doc["Duration"], 4.0);
        assert_eq!(doc["PeakMemory"], 96u64 << 20);
        let names: Vec<&str> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "BytesRead",
                "BytesWritten",
                "ReadThroughput",
                "WriteThroughput",
                "Duration",
                "PeakMemory"
            ]
        );
        // The execution is a property, never a dimension; one line of JSON.
        assert_eq!(doc["Execution"], "run-7");
        assert!(!directive["Dimensions"].to_string().contains("Execution"));
        assert!(!doc.to_string().contains('\n'));
    }

    #[test]
    fn without_a_stack_only_the_step_and_without_either_no_dimension() {
        let doc = emf(&run(), &context(None, Some("task2")), 1, 1);
        assert_valid_emf(&doc);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Step"]])
        );
        assert!(doc.get("Stack").is_none());
        assert_eq!(doc["ExitCode"], 1);
        let doc = emf(&run(), &context(Some("s"), None), 0, 1);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Stack"]])
        );
        let doc = emf(&run(), &context(None, None), 0, 1);
        assert_valid_emf(&doc);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[]])
        );
    }

    #[test]
    fn an_instant_run_and_an_unknown_peak_still_make_a_valid_document() {
        let quick = RunMetrics {
            seconds: 0.0,
            peak_memory: None,
            ..run()
        };
        let doc = emf(&quick, &context(Some("s"), Some("t")), 0, 1);
        assert_valid_emf(&doc);
        assert_eq!(doc["ReadThroughput"], 0.0);
        assert!(doc.get("PeakMemory").is_none());
    }
}
