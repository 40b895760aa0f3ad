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
//! `Step` (the step folder of `BATON_OUTPUT`, a Map item's index folded), never the
//! execution, which is a plain property of the event (searchable in Logs Insights,
//! not a metric). The line is a [`baton::metrics::MetricSet`], as the Lambdas'
//! are, with the same convention: without a stack name, no `Stack` dimension.

use baton::metrics::{MetricSet, NAMESPACE, Unit, dimensions};

/// The metrics of a run (the names the dashboard and the alarms use).
pub mod names {
    /// Bytes of input the job read (bytes).
    pub const BYTES_READ: &str = "BytesRead";
    /// Bytes of output the upload took (bytes).
    pub const BYTES_WRITTEN: &str = "BytesWritten";
    /// Bytes read per second of the run (bytes/second).
    pub const READ_THROUGHPUT: &str = "ReadThroughput";
    /// Bytes written per second of the run (bytes/second).
    pub const WRITE_THROUGHPUT: &str = "WriteThroughput";
    /// From the worker's start to its report (seconds).
    pub const DURATION: &str = "Duration";
    /// Peak memory, when it could be read (bytes).
    pub const PEAK_MEMORY: &str = "PeakMemory";
}

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

/// The EMF line of one run ending with `exit_code`, stamped now
/// ([`MetricSet::at`] to stamp it otherwise); [`MetricSet::emit`] prints it on
/// stdout, where the worker's log lines go.
pub fn metric_set(run: &RunMetrics, at: &RunContext, exit_code: u8) -> MetricSet {
    let seconds = run.seconds.max(0.0);
    let per_second = |bytes: u64| {
        if seconds > 0.0 {
            bytes as f64 / seconds
        } else {
            0.0
        }
    };
    let mut set = MetricSet::new(NAMESPACE).stack(at.stack.as_deref());
    if let Some(step) = &at.step {
        set = set.dimension(dimensions::STEP, step);
    }
    // Per stack, and per step within it; without a stack, per step alone (all the
    // dimensions: the fallback of `dimension_sets`); with neither, no dimension.
    set = set
        .dimension_sets(&[&[dimensions::STACK], &[dimensions::STACK, dimensions::STEP]])
        .metric(names::BYTES_READ, Unit::Bytes, run.bytes_read as f64)
        .metric(names::BYTES_WRITTEN, Unit::Bytes, run.bytes_written as f64)
        .metric(
            names::READ_THROUGHPUT,
            Unit::BytesPerSecond,
            per_second(run.bytes_read),
        )
        .metric(
            names::WRITE_THROUGHPUT,
            Unit::BytesPerSecond,
            per_second(run.bytes_written),
        )
        .metric(names::DURATION, Unit::Seconds, seconds);
    if let Some((bytes, _)) = run.peak_memory {
        set = set.metric(names::PEAK_MEMORY, Unit::Bytes, bytes as f64);
    }
    // Properties: in the log event, not metrics or dimensions.
    set.property("Execution", at.execution.clone())
        .property("Job", at.job.clone())
        .property("TaskArn", at.task_arn.clone())
        .property("ExitCode", exit_code)
        .property(
            "PeakMemorySource",
            run.peak_memory.map(|(_, source)| source),
        )
        .property("message", "worker metrics")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::time::{Duration, UNIX_EPOCH};

    /// The document of one run, stamped `timestamp_ms` after the epoch.
    fn emf(run: &RunMetrics, at: &RunContext, exit_code: u8, timestamp_ms: u64) -> Value {
        metric_set(run, at, exit_code)
            .at(UNIX_EPOCH + Duration::from_millis(timestamp_ms))
            .to_value()
    }

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
        assert_eq!(
            (
                &doc["Job"],
                &doc["TaskArn"],
                &doc["ExitCode"],
                &doc["PeakMemorySource"],
                &doc["message"]
            ),
            (
                &json!("exec"),
                &json!("arn:aws:ecs:eu-west-1:123456789012:task/c/abc"),
                &json!(0),
                &json!("cgroup v2 memory.peak"),
                &json!("worker metrics")
            )
        );
        let line = metric_set(&run(), &context(Some("baton"), Some("task1")), 0).to_line();
        assert!(line.starts_with('{') && line.ends_with("}\n") && line.matches('\n').count() == 1);
    }

    #[test]
    fn a_blank_stack_is_no_stack_and_an_unknown_execution_no_member() {
        let mut at = context(Some("  "), Some("item-*"));
        at.execution = None;
        at.task_arn = None;
        let doc = emf(&run(), &at, 0, 1);
        assert_valid_emf(&doc);
        assert!(doc.get("Stack").is_none(), "{doc}");
        assert_eq!(doc["Step"], "item-*");
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Step"]])
        );
        assert!(doc.get("Execution").is_none() && doc.get("TaskArn").is_none());
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
