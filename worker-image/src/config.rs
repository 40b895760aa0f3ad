//! The worker's environment (a contract), read once at start-up.

use std::time::Duration;

use baton::TaskToken;
use baton::payload::{Payload, S3Location};

use crate::exec::{Exec, command_from_env};
use crate::jobs::{self, DynJob, JobEntry};
pub use crate::settings::ConfigError;
use crate::settings::config_error;

/// Default interval between heartbeats.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(20);
/// Default time a read may go without a byte before it is resumed.
pub const DEFAULT_READ_IDLE: Duration = Duration::from_secs(30);
/// Default time the job may move no byte at all before the worker gives up: long
/// enough for a job that computes before it writes, short enough that a wedged
/// transfer does not keep a task (and its bill) alive for the state's whole timeout.
pub const DEFAULT_STALL: Duration = Duration::from_secs(900);

/// A size in bytes from `name`: a number with an optional unit (`160MiB`, `1GiB`,
/// `512KiB`, or bytes); `None` when unset.
fn bytes_setting(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<usize>, ConfigError> {
    let Some(text) = get(name).filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
    let trimmed = text.trim();
    let digits = trimmed.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &trimmed[digits.len()..];
    let scale: usize = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        _ => 0,
    };
    match digits.trim().parse::<usize>() {
        Ok(n) if scale > 0 => n.checked_mul(scale).map(Some).ok_or_else(|| {
            config_error(
                name,
                format!("{text:?} is more bytes than this machine can address"),
            )
        }),
        _ => Err(config_error(
            name,
            format!("expected a size such as 160MiB, 1GiB or a number of bytes, got {text:?}"),
        )),
    }
}

/// Whole seconds from `name`: `default` when unset, `None` for 0.
fn seconds(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: Duration,
) -> Result<Option<Duration>, ConfigError> {
    match get(name).filter(|s| !s.is_empty()) {
        None => Ok(Some(default)),
        Some(s) => match s.parse::<u64>() {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(Duration::from_secs(n))),
            Err(_) => Err(config_error(
                name,
                format!("expected whole seconds (0 turns it off), got {s:?}"),
            )),
        },
    }
}

/// Where the input comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum InputSource {
    /// `BATON_INPUT`, or the seed's `INPUT_JSON` as inline data.
    Payload(Payload),
    /// The seed's `S3_BUCKET` + `S3_KEY`: pinned with HeadObject at start.
    Object { bucket: String, key: String },
}

pub struct WorkerConfig {
    /// Absent: sync mode (no callbacks; the result is the exit code).
    pub token: Option<TaskToken>,
    pub input: InputSource,
    /// `s3://bucket/prefix/` under which the output is written.
    pub output: S3Location,
    pub job_name: String,
    pub job: Box<dyn DynJob>,
    /// `None` when heartbeats are off (`BATON_HEARTBEAT_SECONDS=0`).
    pub heartbeat: Option<Duration>,
    /// A read of the input that receives no byte for this long is resumed from the
    /// last byte (`BATON_READ_IDLE_SECONDS`).
    pub read_idle: Duration,
    /// No byte read or written by the job for this long: the worker gives up and
    /// reports it (`BATON_STALL_SECONDS`; `None` when 0).
    pub stall: Option<Duration>,
    /// Bytes of transfer buffers, both directions together, when
    /// `BATON_TRANSFER_MEMORY` sets them; `None`: they follow the memory limit
    /// ([`crate::memory::transfer_budget`]).
    pub transfer_memory: Option<usize>,
    /// `BATON_STACK`: the stack's name, a dimension of the run's metrics.
    pub stack: Option<String>,
}

impl std::fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerConfig")
            .field("token", &self.token)
            .field("input", &self.input)
            .field("output", &self.output)
            .field("job", &self.job_name)
            .field("heartbeat", &self.heartbeat)
            .finish()
    }
}

/// The task token, read on its own first: a worker that cannot read the rest of
/// its configuration still reports that through the callback.
pub fn token_from(get: &impl Fn(&str) -> Option<String>) -> Result<Option<TaskToken>, ConfigError> {
    match get("TASK_TOKEN").filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => TaskToken::new(t)
            .map(Some)
            .map_err(|e| config_error("TASK_TOKEN", e.to_string())),
    }
}

impl WorkerConfig {
    /// The configuration from the process environment. `command` is the program
    /// given after `exec --` (or as the container's command); without one,
    /// `BATON_COMMAND`, else the job named by `BATON_JOB` among `jobs`.
    pub fn from_env(
        jobs: &[JobEntry],
        command: Option<Vec<String>>,
    ) -> Result<WorkerConfig, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok(), jobs, command)
    }

    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        jobs: &[JobEntry],
        command: Option<Vec<String>>,
    ) -> Result<WorkerConfig, ConfigError> {
        let token = token_from(&get)?;
        let input = input_from(&get)?;
        let output = output_from(&get)?;
        let command = match command {
            Some(command) => Some(command),
            None => command_from_env(&get)?,
        };
        let (job_name, job): (String, Box<dyn DynJob>) = match command {
            Some(command) => ("exec".into(), Box::new(Exec::new(command, &get)?)),
            None => {
                let name = get("BATON_JOB").filter(|j| !j.is_empty()).ok_or_else(|| {
                    config_error(
                        "BATON_JOB",
                        format!(
                            "not set; one of: {} (or run a command: `baton-worker exec -- <command>` or BATON_COMMAND)",
                            jobs::names(jobs).join(", ")
                        ),
                    )
                })?;
                let job = jobs::create(jobs, &name, &get)?;
                (name, job)
            }
        };
        let heartbeat = seconds(&get, "BATON_HEARTBEAT_SECONDS", DEFAULT_HEARTBEAT)?;
        let read_idle = seconds(&get, "BATON_READ_IDLE_SECONDS", DEFAULT_READ_IDLE)?
            .unwrap_or(DEFAULT_READ_IDLE);
        let stall = seconds(&get, "BATON_STALL_SECONDS", DEFAULT_STALL)?;
        let transfer_memory = bytes_setting(&get, "BATON_TRANSFER_MEMORY")?;
        let stack = get("BATON_STACK").filter(|s| !s.trim().is_empty());
        Ok(WorkerConfig {
            token,
            input,
            output,
            job_name,
            job,
            heartbeat,
            read_idle,
            stall,
            transfer_memory,
            stack,
        })
    }

    /// The execution name, when the output prefix follows Baton's layout
    /// (`…/<execution>/<step>/`).
    pub fn execution(&self) -> Option<&str> {
        let mut parts = self.output.key.trim_end_matches('/').rsplit('/');
        parts.next()?;
        parts.next()
    }

    /// The step, when the output prefix follows Baton's layout
    /// (`executions/<execution>/<step>/`), as a metric dimension: a Map's numbered
    /// steps (`item-17`) share one value (`item-*`), so the dimension stays bounded.
    pub fn step(&self) -> Option<String> {
        let parts: Vec<&str> = self.output.key.trim_end_matches('/').split('/').collect();
        let ["executions", execution, step] = parts.as_slice() else {
            return None;
        };
        if execution.is_empty() || step.is_empty() {
            return None;
        }
        Some(match step.rsplit_once('-') {
            Some((name, index))
                if !name.is_empty()
                    && index.bytes().all(|b| b.is_ascii_digit())
                    && !index.is_empty() =>
            {
                format!("{name}-*")
            }
            _ => (*step).to_string(),
        })
    }

    /// Key of the output object: `<prefix>output`.
    pub fn output_key(&self) -> String {
        format!("{}output", self.output.key)
    }

    /// Key of the sync-mode result record: `<prefix>result.json`.
    pub fn result_key(&self) -> String {
        format!("{}result.json", self.output.key)
    }
}

fn input_from(get: &impl Fn(&str) -> Option<String>) -> Result<InputSource, ConfigError> {
    if let Some(text) = get("BATON_INPUT").filter(|t| !t.is_empty()) {
        let payload =
            Payload::parse(&text).map_err(|e| config_error("BATON_INPUT", e.to_string()))?;
        return Ok(InputSource::Payload(payload));
    }
    match (get("S3_BUCKET"), get("S3_KEY")) {
        (Some(bucket), Some(key)) if !bucket.is_empty() && !key.is_empty() => {
            return Ok(InputSource::Object { bucket, key });
        }
        (Some(_), None) => {
            return Err(config_error("S3_KEY", "S3_BUCKET is set but S3_KEY is not"));
        }
        (None, Some(_)) => {
            return Err(config_error(
                "S3_BUCKET",
                "S3_KEY is set but S3_BUCKET is not",
            ));
        }
        _ => {}
    }
    if let Some(text) = get("INPUT_JSON") {
        let value = serde_json::from_str(&text)
            .map_err(|e| config_error("INPUT_JSON", format!("not JSON: {e}")))?;
        return Ok(InputSource::Payload(Payload::Inline(value)));
    }
    Err(config_error(
        "BATON_INPUT",
        "not set (nor the seed's S3_BUCKET + S3_KEY or INPUT_JSON): the worker has no input",
    ))
}

fn output_from(get: &impl Fn(&str) -> Option<String>) -> Result<S3Location, ConfigError> {
    let uri = get("BATON_OUTPUT")
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            config_error(
                "BATON_OUTPUT",
                "not set: give s3://bucket/prefix/ for the output",
            )
        })?;
    let mut location =
        S3Location::parse(&uri).map_err(|e| config_error("BATON_OUTPUT", e.to_string()))?;
    if !location.key.is_empty() && !location.key.ends_with('/') {
        location.key.push('/');
    }
    Ok(location)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name: &str| map.get(name).cloned()
    }

    const BASE: [(&str, &str); 3] = [
        ("BATON_INPUT", r#"{"inline":"hello"}"#),
        ("BATON_OUTPUT", "s3://bucket/executions/run-7/task1"),
        ("BATON_JOB", "copy"),
    ];

    #[test]
    fn reads_the_contract_variables() {
        let c = WorkerConfig::from_lookup(lookup(&BASE), &jobs::builtin(), None).unwrap();
        assert_eq!(c.token, None);
        assert_eq!(
            c.input,
            InputSource::Payload(Payload::Inline("hello".into()))
        );
        assert_eq!(c.output.key, "executions/run-7/task1/");
        assert_eq!(c.output_key(), "executions/run-7/task1/output");
        assert_eq!(c.execution(), Some("run-7"));
        assert_eq!(c.heartbeat, Some(DEFAULT_HEARTBEAT));
        assert_eq!(c.transfer_memory, None);
        assert_eq!(c.step().as_deref(), Some("task1"));
        assert_eq!(c.stack, None);
    }

    #[test]
    fn the_step_dimension_is_bounded() {
        let step = |output: &str| {
            let mut pairs = BASE.to_vec();
            pairs.retain(|(k, _)| *k != "BATON_OUTPUT");
            pairs.push(("BATON_OUTPUT", output));
            pairs.push(("BATON_STACK", "baton"));
            let c = WorkerConfig::from_lookup(lookup(&pairs), &jobs::builtin(), None).unwrap();
            assert_eq!(c.stack.as_deref(), Some("baton"));
            c.step()
        };
        assert_eq!(
            step("s3://b/executions/run-7/task2/").as_deref(),
            Some("task2")
        );
        assert_eq!(
            step("s3://b/executions/run-7/item-17/").as_deref(),
            Some("item-*")
        );
        assert_eq!(
            step("s3://b/executions/run-7/top-words/").as_deref(),
            Some("top-words")
        );
        // Not Baton's layout: no step, rather than an unbounded value.
        assert_eq!(step("s3://b/out/"), None);
        assert_eq!(step("s3://b/runs/7f3a/x/"), None);
        assert_eq!(step("s3://b/executions/run-7/task1/extra/"), None);
    }

    #[test]
    fn transfer_memory_takes_sizes_with_units_and_names_the_variable_when_wrong() {
        let with = |value: &str| {
            let mut pairs = BASE.to_vec();
            pairs.push(("BATON_TRANSFER_MEMORY", value));
            WorkerConfig::from_lookup(lookup(&pairs), &jobs::builtin(), None)
        };
        for (text, bytes) in [
            ("64MiB", 64 << 20),
            ("1GiB", 1 << 30),
            ("512 KiB", 512 << 10),
            ("2g", 2 << 30),
            ("1000", 1000),
        ] {
            assert_eq!(with(text).unwrap().transfer_memory, Some(bytes), "{text}");
        }
        for bad in ["lots", "64MB", "-1MiB", "99999999999999999999GiB"] {
            let err = with(bad).unwrap_err();
            assert_eq!(err.variable, "BATON_TRANSFER_MEMORY", "{bad}");
        }
    }

    #[test]
    fn heartbeat_setting() {
        let mut vars = BASE.to_vec();
        vars.push(("BATON_HEARTBEAT_SECONDS", "0"));
        assert_eq!(
            WorkerConfig::from_lookup(lookup(&vars), &jobs::builtin(), None)
                .unwrap()
                .heartbeat,
            None
        );
        vars.pop();
        vars.push(("BATON_HEARTBEAT_SECONDS", "5"));
        assert_eq!(
            WorkerConfig::from_lookup(lookup(&vars), &jobs::builtin(), None)
                .unwrap()
                .heartbeat,
            Some(Duration::from_secs(5))
        );
        vars.pop();
        vars.push(("BATON_HEARTBEAT_SECONDS", "soon"));
        assert_eq!(
            WorkerConfig::from_lookup(lookup(&vars), &jobs::builtin(), None)
                .unwrap_err()
                .variable,
            "BATON_HEARTBEAT_SECONDS"
        );
    }

    #[test]
    fn errors_name_the_variable() {
        let without = |name: &str| -> Vec<(&str, &str)> {
            BASE.iter().copied().filter(|(k, _)| *k != name).collect()
        };
        for name in ["BATON_INPUT", "BATON_OUTPUT", "BATON_JOB"] {
            let err = WorkerConfig::from_lookup(lookup(&without(name)), &jobs::builtin(), None)
                .unwrap_err();
            assert_eq!(err.variable, name);
            assert!(err.to_string().starts_with(name), "{err}");
        }
        let mut bad = without("BATON_JOB");
        bad.push(("BATON_JOB", "nope"));
        let err = WorkerConfig::from_lookup(lookup(&bad), &jobs::builtin(), None).unwrap_err();
        assert!(
            err.to_string().contains("copy"),
            "lists the known jobs: {err}"
        );
        let mut bad = without("BATON_INPUT");
        bad.push(("BATON_INPUT", r#"{"s3":{}}"#));
        assert_eq!(
            WorkerConfig::from_lookup(lookup(&bad), &jobs::builtin(), None)
                .unwrap_err()
                .variable,
            "BATON_INPUT"
        );
        let mut bad = without("BATON_OUTPUT");
        bad.push(("BATON_OUTPUT", "/tmp/out"));
        assert_eq!(
            WorkerConfig::from_lookup(lookup(&bad), &jobs::builtin(), None)
                .unwrap_err()
                .variable,
            "BATON_OUTPUT"
        );
    }

    #[test]
    fn seed_variables_still_work() {
        let vars = [
            ("S3_BUCKET", "b"),
            ("S3_KEY", "in/data.csv"),
            ("BATON_OUTPUT", "s3://b/out/"),
            ("BATON_JOB", "copy"),
        ];
        let c = WorkerConfig::from_lookup(lookup(&vars), &jobs::builtin(), None).unwrap();
        assert_eq!(
            c.input,
            InputSource::Object {
                bucket: "b".into(),
                key: "in/data.csv".into()
            }
        );
        let vars = [
            ("INPUT_JSON", r#"{"n": 1}"#),
            ("BATON_OUTPUT", "s3://b/out/"),
            ("BATON_JOB", "copy"),
        ];
        let c = WorkerConfig::from_lookup(lookup(&vars), &jobs::builtin(), None).unwrap();
        assert_eq!(
            c.input,
            InputSource::Payload(Payload::Inline(serde_json::json!({"n": 1})))
        );
        let vars = [
            ("S3_BUCKET", "b"),
            ("BATON_OUTPUT", "s3://b/out/"),
            ("BATON_JOB", "copy"),
        ];
        assert_eq!(
            WorkerConfig::from_lookup(lookup(&vars), &jobs::builtin(), None)
                .unwrap_err()
                .variable,
            "S3_KEY"
        );
    }

    #[test]
    fn the_token_is_read_first_and_never_shown() {
        let vars = [("TASK_TOKEN", "AQCEsecret")];
        let token = token_from(&lookup(&vars)).unwrap().unwrap();
        assert!(!format!("{token:?}").contains("secret"));
        assert!(WorkerConfig::from_lookup(lookup(&vars), &jobs::builtin(), None).is_err());
    }

    #[test]
    fn a_token_of_2048_characters_or_more_is_taken_as_is() {
        // Tokens run to 2,048 characters; the worker must never refuse one (it used to
        // exit 2 past 1,024 and the execution hung until its heartbeat timeout).
        for len in [2_048, 4_096] {
            let long = "A".repeat(len);
            let vars = [("TASK_TOKEN", long.as_str())];
            let token = token_from(&lookup(&vars)).unwrap().unwrap();
            assert_eq!(token.expose().len(), len);
        }
    }
}
