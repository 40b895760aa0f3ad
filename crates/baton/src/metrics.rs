//! Baton's own metrics, in CloudWatch's embedded metric format (EMF).
//!
//! A [`MetricSet`] is one JSON object on one line of stdout. Lambda sends stdout to
//! the function's log group, and CloudWatch Logs extracts the metrics of any log
//! event that follows the EMF specification
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>,
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Lambda.html>):
//! no agent, no `cloudwatch:PutMetricData` call, no permission beyond the logs the
//! function already writes. The line is written as it is, never inside a tracing
//! record ([`crate::logs`] writes its own JSON lines to the same stdout, one
//! `write` each, as this module does); Lambda's JSON log format does not encode
//! again a line that already is JSON
//! (<https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-logformat.html>).
//!
//! ```json
//! {"_aws":{"Timestamp":1796454467123,"CloudWatchMetrics":[{"Namespace":"Baton",
//!   "Dimensions":[["Stack","Error"],["Stack"]],
//!   "Metrics":[{"Name":"Failures","Unit":"Count"},{"Name":"StopToFailLatency","Unit":"Milliseconds"}]}]},
//!  "Stack":"baton","Error":"Baton.ContainerExited","Failures":1,"StopToFailLatency":412,
//!  "function":"task-watchdog","taskArn":"arn:aws:ecs:…"}
//! ```
//!
//! Dimensions keep the number of metrics bounded, so the cost too: `Stack` (the
//! stack's name, [`STACK_VARIABLE`]), `Error` (a `Baton.*` name, a closed set) and,
//! for the worker's run metrics, `Step` (a step's folder, its item index folded).
//! Without a stack name (the variable unset or blank) the `Stack` dimension is left
//! out, and so is every dimension set that names it: the Lambdas and the worker
//! follow the same convention.
//! An execution's name or a task's ARN is never a dimension, only a property: a
//! top-level member CloudWatch keeps in the log event, searchable with Logs
//! Insights, that creates no metric.
//!
//! Metrics are best effort: building or writing one never fails, never panics and
//! never holds a handler up. A value that is not a finite number is left out, a
//! dimension value CloudWatch would refuse is made acceptable, and a line that
//! cannot be written is dropped.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::limits::truncate_chars;

/// Baton's namespace in CloudWatch.
pub const NAMESPACE: &str = "Baton";
/// The environment variable that names the stack (the template sets it to
/// `AWS::StackName` on every function and on the worker); the `Stack` dimension's
/// value. Unset or blank: no `Stack` dimension.
pub const STACK_VARIABLE: &str = "BATON_STACK";

/// Dimension names (bounded value sets only).
pub mod dimensions {
    /// The stack's name.
    pub const STACK: &str = "Stack";
    /// A `Baton.*` error name (`crate::error::names`).
    pub const ERROR: &str = "Error";
    /// A step's folder in `BATON_OUTPUT` (`executions/<execution>/<step>/`), a
    /// Map item's index folded (`item-7` is `item-*`): the worker's run metrics.
    pub const STEP: &str = "Step";
}

/// The metrics the Lambdas report.
pub mod names {
    /// One task, step or Lambda invocation failed with a `Baton.*` error (count).
    pub const FAILURES: &str = "Failures";
    /// From a task's stop (the ECS event's `stoppedAt`) to its token failed by the
    /// watchdog (milliseconds).
    pub const STOP_TO_FAIL_LATENCY: &str = "StopToFailLatency";
    /// Events the watchdog could not act on yet, handed back to SQS to come again
    /// after the visibility timeout (count).
    pub const WATCHDOG_EVENTS_RETRIED: &str = "WatchdogEventsRetried";
}

/// CloudWatch's units (`StandardUnit`, as EMF's `Unit` takes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    Seconds,
    Bytes,
    BytesPerSecond,
    Megabytes,
    Percent,
    None,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
            Unit::Bytes => "Bytes",
            Unit::BytesPerSecond => "Bytes/Second",
            Unit::Megabytes => "Megabytes",
            Unit::Percent => "Percent",
            Unit::None => "None",
        }
    }
}

/// EMF: a metric directive holds at most 100 metrics, a dimension set at most 30
/// keys, a metric value array at most 100 values.
const MAX_METRICS: usize = 100;
const MAX_DIMENSIONS: usize = 30;
/// CloudWatch: a dimension value is 1 to 1,024 ASCII characters, no control
/// characters; a name (of a dimension or metric) 1 to 255.
const MAX_DIMENSION_VALUE: usize = 1_024;
const MAX_NAME: usize = 255;
/// Properties are for finding a log event, not for data: each string is cut.
const MAX_PROPERTY_CHARS: usize = 2_048;
/// The member EMF reserves for its metadata.
const METADATA: &str = "_aws";

/// One EMF log event: metrics sharing a namespace, a timestamp and dimensions, and
/// properties. Build it, then [`MetricSet::emit`] it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSet {
    namespace: String,
    timestamp_ms: u64,
    /// In the order given: unless `only_rollups`, the first dimension set is all
    /// of them.
    dimensions: Vec<(String, String)>,
    /// More dimension sets, as asked for; one that names a dimension the set does
    /// not have is left out when the document is built.
    rollups: Vec<Vec<String>>,
    /// [`MetricSet::dimension_sets`]: the rollups alone, without the set of all
    /// the dimensions first (unless no rollup is left).
    only_rollups: bool,
    metrics: Vec<(String, Unit, f64)>,
    properties: Map<String, Value>,
}

impl MetricSet {
    /// An empty set in `namespace`, stamped now.
    pub fn new(namespace: &str) -> MetricSet {
        MetricSet {
            namespace: clean_name(namespace),
            timestamp_ms: millis(SystemTime::now()),
            dimensions: Vec::new(),
            rollups: Vec::new(),
            only_rollups: false,
            metrics: Vec::new(),
            properties: Map::new(),
        }
    }

    /// An empty set in Baton's namespace with the `Stack` dimension
    /// ([`stack_name`]); without a stack name, without it.
    pub fn baton() -> MetricSet {
        MetricSet::new(NAMESPACE).stack(stack_name().as_deref())
    }

    /// Add the `Stack` dimension when there is a stack name (not blank); leave it
    /// out otherwise, never inventing one.
    pub fn stack(self, stack: Option<&str>) -> MetricSet {
        match stack.filter(|s| !s.trim().is_empty()) {
            Some(stack) => self.dimension(dimensions::STACK, stack),
            None => self,
        }
    }

    /// One failure with a `Baton.*` error: `Failures` = 1, by `Stack` and `Error`,
    /// and by `Stack` alone (every error's sum, for one graph or alarm). Without a
    /// stack name, by `Error` alone.
    pub fn failure(error: &str) -> MetricSet {
        MetricSet::baton()
            .dimension(dimensions::ERROR, error)
            .rollup(&[dimensions::STACK])
            .metric(names::FAILURES, Unit::Count, 1.0)
    }

    /// A Lambda's typed failure, counted as [`MetricSet::failure`] with the function
    /// and the execution its request named (its `execution`) as properties: what
    /// prepare-input and offload-output emit when they answer a `Baton.*` error.
    pub fn lambda_failure(function: &str, request: &Value, error: &str) -> MetricSet {
        let execution = request
            .get("execution")
            .and_then(Value::as_str)
            .map(String::from);
        MetricSet::failure(error)
            .property("function", function)
            .property("execution", execution)
    }

    /// Add a dimension (replacing one of the same name). Its value must come from a
    /// bounded set: never an execution's name, a task's ARN or anything a user
    /// chooses freely. A value CloudWatch would refuse (empty, non-ASCII, control
    /// characters, over 1,024 characters) is made acceptable.
    pub fn dimension(mut self, name: &str, value: &str) -> MetricSet {
        let name = clean_name(name);
        let value = clean_dimension_value(value);
        if let Some(existing) = self.dimensions.iter_mut().find(|(n, _)| *n == name) {
            existing.1 = value;
        } else if self.dimensions.len() < MAX_DIMENSIONS {
            self.properties.remove(&name);
            self.dimensions.push((name, value));
        }
        self
    }

    /// Also aggregate by these dimensions alone (an extra dimension set; `&[]`:
    /// the empty set, every value together). A set that names a dimension the
    /// metric set does not have when it is written is left out, as a whole (no
    /// `Stack` dimension without a stack name: no set by `Stack`).
    pub fn rollup(mut self, names: &[&str]) -> MetricSet {
        let mut set: Vec<String> = Vec::with_capacity(names.len());
        for name in names.iter().map(|n| clean_name(n)) {
            if !set.contains(&name) {
                set.push(name);
            }
        }
        if !self.rollups.contains(&set) {
            self.rollups.push(set);
        }
        self
    }

    /// Aggregate by exactly these dimension sets, in this order, instead of all
    /// the dimensions followed by the rollups. Each is a [`MetricSet::rollup`]: a
    /// set naming a dimension the metric set lacks is left out; when none is
    /// left, the set of all the dimensions (empty without any) is the one, so
    /// that the metrics are always published.
    pub fn dimension_sets(mut self, sets: &[&[&str]]) -> MetricSet {
        self.rollups.clear();
        self.only_rollups = true;
        for set in sets {
            self = self.rollup(set);
        }
        self
    }

    /// The dimension sets, as written: see [`MetricSet::rollup`] and
    /// [`MetricSet::dimension_sets`].
    fn dimension_set_names(&self) -> Vec<Vec<String>> {
        let all: Vec<String> = self.dimensions.iter().map(|(n, _)| n.clone()).collect();
        let mut sets = Vec::new();
        if !self.only_rollups {
            sets.push(all.clone());
        }
        for rollup in &self.rollups {
            if rollup.iter().all(|n| all.contains(n)) && !sets.contains(rollup) {
                sets.push(rollup.clone());
            }
        }
        if sets.is_empty() {
            sets.push(all);
        }
        sets
    }

    /// Add a metric (replacing one of the same name). A value that is not finite
    /// (NaN, infinite) is left out: JSON has no such number.
    pub fn metric(mut self, name: &str, unit: Unit, value: f64) -> MetricSet {
        let name = clean_name(name);
        self.metrics.retain(|(n, _, _)| *n != name);
        if value.is_finite() && self.metrics.len() < MAX_METRICS {
            self.properties.remove(&name);
            self.metrics.push((name, unit, value));
        }
        self
    }

    /// Add a property: a top-level member that is no metric and no dimension (an
    /// execution's name, a task's ARN). A name taken by a dimension, a metric or
    /// `_aws` is ignored, and so is a null (`None`); strings are cut at 2,048
    /// characters.
    pub fn property(mut self, name: &str, value: impl Into<Value>) -> MetricSet {
        let value = value.into();
        let taken = value.is_null()
            || name == METADATA
            || self.dimensions.iter().any(|(n, _)| n == name)
            || self.metrics.iter().any(|(n, _, _)| n == name);
        if !taken {
            let value = match value {
                Value::String(s) => Value::String(truncate_chars(&s, MAX_PROPERTY_CHARS).into()),
                other => other,
            };
            self.properties.insert(name.to_string(), value);
        }
        self
    }

    /// Stamp the set with `at` instead of now.
    pub fn at(mut self, at: SystemTime) -> MetricSet {
        self.timestamp_ms = millis(at);
        self
    }

    /// Does it hold any metric? A set without one is never written.
    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }

    /// The EMF document.
    pub fn to_value(&self) -> Value {
        let sets = self.dimension_set_names();
        let definitions: Vec<Value> = self
            .metrics
            .iter()
            .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()}))
            .collect();
        let mut root = self.properties.clone();
        for (name, value) in &self.dimensions {
            root.insert(name.clone(), Value::String(value.clone()));
        }
        for (name, _, value) in &self.metrics {
            root.insert(name.clone(), number(*value));
        }
        root.insert(
            METADATA.into(),
            json!({
                "Timestamp": self.timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": sets,
                    "Metrics": definitions,
                }],
            }),
        );
        Value::Object(root)
    }

    /// The document as one line, with its newline.
    pub fn to_line(&self) -> String {
        let mut line = self.to_value().to_string();
        line.push('\n');
        line
    }

    /// Write the line to `out` in one call, so that it never interleaves with a log
    /// line written by another thread.
    pub fn write_to(&self, out: &mut impl Write) -> std::io::Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        out.write_all(self.to_line().as_bytes())?;
        out.flush()
    }

    /// Write the line to stdout; best effort: a line that cannot be written is
    /// dropped, and nothing here fails or panics.
    pub fn emit(&self) {
        let line = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.to_line()));
        if let (Ok(line), false) = (line, self.is_empty()) {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(line.as_bytes()).and_then(|_| out.flush());
        }
    }
}

/// The stack's name, from [`STACK_VARIABLE`]; `None` when it is unset or blank
/// (then no metric has a `Stack` dimension).
pub fn stack_name() -> Option<String> {
    stack_or_none(std::env::var(STACK_VARIABLE).ok())
}

fn stack_or_none(value: Option<String>) -> Option<String> {
    value.filter(|s| !s.trim().is_empty())
}

/// Milliseconds from `since` (an RFC 3339 time, as ECS events carry them) to `now`;
/// `None` when it cannot be read or lies after `now` (clocks apart).
pub fn millis_since(since: &str, now: SystemTime) -> Option<f64> {
    let since =
        aws_smithy_types::DateTime::from_str(since, aws_smithy_types::date_time::Format::DateTime)
            .ok()?;
    let since = SystemTime::try_from(since).ok()?;
    now.duration_since(since)
        .ok()
        .map(|d| d.as_secs_f64() * 1_000.0)
}

fn millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis().try_into().unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A whole number prints without a fraction (`1`, not `1.0`).
fn number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9_007_199_254_740_992.0 {
        json!(value as i64)
    } else {
        json!(value)
    }
}

/// ASCII without control characters, not blank, 1 to `max` characters.
fn clean(text: &str, max: usize, empty: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '_'
            }
        })
        .take(max)
        .collect();
    if cleaned.trim().is_empty() {
        empty.into()
    } else {
        cleaned
    }
}

fn clean_name(name: &str) -> String {
    // A dimension name may not start with a colon.
    clean(name.trim_start_matches(':'), MAX_NAME, "unnamed")
}

fn clean_dimension_value(value: &str) -> String {
    clean(value, MAX_DIMENSION_VALUE, "unknown")
}

/// A Lambda's answer to `request`, its `Baton.*` failure counted on the way
/// ([`MetricSet::lambda_failure`], best effort): prepare-input's and offload-output's.
pub async fn counted<T>(
    function: &str,
    request: &Value,
    answer: impl std::future::Future<Output = Result<T, crate::Error>>,
) -> Result<T, crate::Error> {
    let answer = answer.await;
    if let Err(e) = &answer {
        MetricSet::lambda_failure(function, request, e.name()).emit();
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::names as errors;
    use std::time::Duration;

    const UNITS: [&str; 27] = [
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    ];

    /// The EMF specification's rules, checked on one document: the root is an
    /// object with `_aws` {Timestamp: number, CloudWatchMetrics: [MetricDirective]};
    /// each directive has a Namespace, Dimensions (arrays of at most 30 keys, each a
    /// top-level member whose value is a string) and Metrics (at most 100, each a
    /// Name that is a top-level member whose value is a number or an array of at
    /// most 100 numbers, and a Unit CloudWatch knows).
    fn assert_valid_emf(doc: &Value) {
        let root = doc.as_object().expect("the root is an object");
        let aws = root["_aws"].as_object().expect("_aws is an object");
        assert!(aws["Timestamp"].is_u64(), "Timestamp: ms since the epoch");
        let directives = aws["CloudWatchMetrics"].as_array().unwrap();
        assert!(!directives.is_empty());
        for directive in directives {
            let directive = directive.as_object().unwrap();
            let namespace = directive["Namespace"].as_str().unwrap();
            assert!(!namespace.is_empty() && namespace.len() <= 255);
            for set in directive["Dimensions"].as_array().unwrap() {
                let set = set.as_array().unwrap();
                assert!(set.len() <= 30);
                for key in set {
                    let key = key.as_str().unwrap();
                    let value = root
                        .get(key)
                        .unwrap_or_else(|| panic!("dimension {key} is no member"));
                    let value = value.as_str().expect("a dimension's value is a string");
                    assert!(!value.trim().is_empty() && value.len() <= 1_024);
                    assert!(value.chars().all(|c| c.is_ascii() && !c.is_ascii_control()));
                }
            }
            let metrics = directive["Metrics"].as_array().unwrap();
            assert!(!metrics.is_empty() && metrics.len() <= 100);
            for metric in metrics {
                let name = metric["Name"].as_str().unwrap();
                match root
                    .get(name)
                    .unwrap_or_else(|| panic!("{name} is no member"))
                {
                    Value::Number(_) => {}
                    Value::Array(values) => {
                        assert!(values.len() <= 100 && values.iter().all(Value::is_number))
                    }
                    other => panic!("{name} is {other}, not a number"),
                }
                if let Some(unit) = metric.get("Unit") {
                    assert!(UNITS.contains(&unit.as_str().unwrap()), "{unit}");
                }
            }
        }
    }

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn a_failure_is_counted_by_stack_and_error_and_by_stack_alone() {
        let set = MetricSet::new(NAMESPACE)
            .dimension(dimensions::STACK, "baton")
            .dimension(dimensions::ERROR, errors::CONTAINER_EXITED)
            .rollup(&[dimensions::STACK])
            .metric(names::FAILURES, Unit::Count, 1.0)
            .metric(names::STOP_TO_FAIL_LATENCY, Unit::Milliseconds, 412.5)
            .property("taskArn", "arn:aws:ecs:us-east-1:1:task/baton/2d3c")
            .property("execution", "demo-1")
            .at(at(1_796_454_467_123));
        let doc = set.to_value();
        assert_valid_emf(&doc);
        assert_eq!(
            doc,
            json!({
                "_aws": {
                    "Timestamp": 1_796_454_467_123u64,
                    "CloudWatchMetrics": [{
                        "Namespace": "Baton",
                        "Dimensions": [["Stack", "Error"], ["Stack"]],
                        "Metrics": [
                            {"Name": "Failures", "Unit": "Count"},
                            {"Name": "StopToFailLatency", "Unit": "Milliseconds"},
                        ],
                    }],
                },
                "Stack": "baton",
                "Error": "Baton.ContainerExited",
                "Failures": 1,
                "StopToFailLatency": 412.5,
                "taskArn": "arn:aws:ecs:us-east-1:1:task/baton/2d3c",
                "execution": "demo-1",
            })
        );
    }

    #[test]
    fn the_line_is_one_bare_json_object_with_its_newline() {
        let line = MetricSet::failure(errors::OUT_OF_MEMORY)
            .property("cause", "line one\nline two")
            .to_line();
        assert!(line.starts_with('{') && line.ends_with("}\n"));
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        let doc: Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_valid_emf(&doc);
        assert_eq!(doc["Error"], "Baton.OutOfMemory");
        assert_eq!(doc["Failures"], 1);
        assert_eq!(
            doc.get("Stack").and_then(Value::as_str),
            stack_name().as_deref(),
            "the Stack dimension is BATON_STACK, or absent without it"
        );
    }

    #[test]
    fn the_stack_is_a_name_or_nothing() {
        assert_eq!(stack_or_none(None), None);
        assert_eq!(stack_or_none(Some(String::new())), None);
        assert_eq!(stack_or_none(Some("  ".into())), None);
        assert_eq!(
            stack_or_none(Some("baton-prod".into())).as_deref(),
            Some("baton-prod")
        );
    }

    #[test]
    fn without_a_stack_name_the_stack_dimension_and_its_sets_are_left_out() {
        for stack in [None, Some(""), Some(" \t")] {
            // What `MetricSet::failure` builds when BATON_STACK is unset or blank.
            let doc = MetricSet::new(NAMESPACE)
                .stack(stack)
                .dimension(dimensions::ERROR, errors::CONTAINER_EXITED)
                .rollup(&[dimensions::STACK])
                .metric(names::FAILURES, Unit::Count, 1.0)
                .to_value();
            assert_valid_emf(&doc);
            assert!(doc.get("Stack").is_none(), "{doc}");
            assert_eq!(
                doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
                json!([["Error"]]),
                "no set by Stack without a stack"
            );
            // A set with the Stack dimension alone: no dimension left at all.
            let doc = MetricSet::new(NAMESPACE)
                .stack(stack)
                .metric(names::WATCHDOG_EVENTS_RETRIED, Unit::Count, 2.0)
                .to_value();
            assert_valid_emf(&doc);
            assert!(doc.get("Stack").is_none(), "{doc}");
            assert_eq!(
                doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
                json!([[]])
            );
        }
        let doc = MetricSet::new(NAMESPACE)
            .stack(Some("baton"))
            .dimension(dimensions::ERROR, errors::CONTAINER_EXITED)
            .rollup(&[dimensions::STACK])
            .metric(names::FAILURES, Unit::Count, 1.0)
            .to_value();
        assert_eq!(doc["Stack"], "baton");
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Stack", "Error"], ["Stack"]])
        );
    }

    #[test]
    fn explicit_dimension_sets_keep_their_order_and_fall_back_to_all_the_dimensions() {
        let sets: &[&[&str]] = &[&[dimensions::STACK], &[dimensions::STACK, dimensions::STEP]];
        let run = |stack: Option<&str>, step: Option<&str>| {
            let mut set = MetricSet::new(NAMESPACE).stack(stack);
            if let Some(step) = step {
                set = set.dimension(dimensions::STEP, step);
            }
            let doc = set
                .dimension_sets(sets)
                .metric("BytesRead", Unit::Bytes, 10.0)
                .to_value();
            assert_valid_emf(&doc);
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"].clone()
        };
        assert_eq!(
            run(Some("baton"), Some("task1")),
            json!([["Stack"], ["Stack", "Step"]]),
            "in the order given, without the set of all the dimensions first"
        );
        assert_eq!(run(Some("baton"), None), json!([["Stack"]]));
        assert_eq!(
            run(None, Some("task1")),
            json!([["Step"]]),
            "no set left: all the dimensions"
        );
        assert_eq!(run(None, None), json!([[]]), "no dimension: the empty set");
        // Rollups after dimension_sets add to them; repeated sets and names are not
        // repeated.
        let doc = MetricSet::new(NAMESPACE)
            .dimension("A", "a")
            .dimension("B", "b")
            .dimension_sets(&[&["B", "B"], &["A", "B"]])
            .rollup(&["B"])
            .rollup(&[])
            .metric("M", Unit::None, 1.0)
            .to_value();
        assert_valid_emf(&doc);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["B"], ["A", "B"], []])
        );
    }

    #[test]
    fn names_values_and_properties_cloudwatch_would_refuse_are_mended_or_left_out() {
        let set = MetricSet::new("Baton")
            .dimension("Stack", "")
            .dimension("Error", "Baton.é\u{7}x")
            .dimension(":Colon", &"x".repeat(5_000))
            .metric("NotANumber", Unit::Count, f64::NAN)
            .metric("Infinite", Unit::Milliseconds, f64::INFINITY)
            .metric("Fine", Unit::Bytes, 3.0)
            .property("Fine", "a property may not hide a metric")
            .property("Stack", "nor a dimension")
            .property("_aws", "nor the metadata")
            .property("long", "y".repeat(10_000))
            .property("absent", None::<String>);
        let doc = set.to_value();
        assert_valid_emf(&doc);
        assert_eq!(doc["Stack"], "unknown");
        assert_eq!(doc["Error"], "Baton.__x");
        assert_eq!(doc["Colon"].as_str().unwrap().len(), 1_024);
        assert!(doc.get("NotANumber").is_none() && doc.get("Infinite").is_none());
        assert_eq!(doc["Fine"], 3);
        assert_eq!(doc["long"].as_str().unwrap().len(), 2_048);
        assert!(doc.get("absent").is_none(), "no null members");
        let metrics = &doc["_aws"]["CloudWatchMetrics"][0]["Metrics"];
        assert_eq!(metrics, &json!([{"Name": "Fine", "Unit": "Bytes"}]));
    }

    #[test]
    fn a_set_without_metrics_writes_nothing() {
        let mut out = Vec::new();
        MetricSet::baton()
            .property("execution", "n1")
            .write_to(&mut out)
            .unwrap();
        assert!(out.is_empty());
        MetricSet::failure(errors::TIMED_OUT)
            .write_to(&mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert_valid_emf(&serde_json::from_str(&text).unwrap());
    }

    #[test]
    fn a_writer_that_fails_is_an_error_for_write_to_and_nothing_for_emit() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("closed"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Err(std::io::Error::other("closed"))
            }
        }
        assert!(
            MetricSet::failure(errors::TIMED_OUT)
                .write_to(&mut Broken)
                .is_err()
        );
        MetricSet::failure(errors::TIMED_OUT).emit(); // stdout: never fails
    }

    #[test]
    fn repeated_names_replace_and_rollups_keep_to_known_dimensions() {
        let doc = MetricSet::new("Baton")
            .dimension("Stack", "a")
            .dimension("Stack", "b")
            .rollup(&["Stack", "Execution"])
            .rollup(&["Stack"])
            .metric("Failures", Unit::Count, 1.0)
            .metric("Failures", Unit::Count, 2.0)
            .to_value();
        assert_valid_emf(&doc);
        assert_eq!(doc["Stack"], "b");
        assert_eq!(doc["Failures"], 2);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Stack"]]),
            "the rollup equal to the full set is not repeated; one naming a missing dimension is left out"
        );
    }

    #[test]
    fn latency_is_measured_from_an_rfc3339_stop_time() {
        // 2024-11-13T21:23:11.984Z is 1_731_532_991_984 ms after the epoch.
        let now = at(1_731_532_991_984 + 412);
        assert_eq!(millis_since("2024-11-13T21:23:11.984Z", now), Some(412.0));
        assert_eq!(millis_since("2024-11-13T21:23:11Z", now), Some(1_396.0));
        assert_eq!(
            millis_since("2024-11-13T21:23:21.984Z", now),
            None,
            "after now"
        );
        assert_eq!(millis_since("yesterday", now), None);
    }
}
