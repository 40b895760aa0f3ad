//! Handing a Payload to the next ECS task: the S3 layout of an execution and the
//! staging of inline data that would not fit the task's override budget.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;
use crate::payload::{EnvEntry, Payload, fits_override, inline_bytes, inline_content_type};
use crate::store::Store;

/// Settings of the Lambdas that hand Payloads to ECS tasks, read once at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoffConfig {
    /// `BATON_BUCKET` (required): where staged data and task outputs go.
    pub bucket: String,
    /// `BATON_PREFIX` (default `executions/`): key prefix of every execution.
    pub prefix: String,
    /// `BATON_CONTAINER` (default `worker`): the container whose override
    /// carries the Payload.
    pub container: String,
}

impl HandoffConfig {
    pub fn from_env() -> Result<HandoffConfig, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<HandoffConfig, Error> {
        let bucket = get("BATON_BUCKET")
            .filter(|b| !b.is_empty())
            .ok_or_else(|| {
                Error::InvalidInput(
                    "BATON_BUCKET is not set: name the bucket for staged data".into(),
                )
            })?;
        let defaults = HandoffConfig::for_bucket(&bucket);
        Ok(HandoffConfig {
            prefix: get("BATON_PREFIX").unwrap_or(defaults.prefix),
            container: get("BATON_CONTAINER")
                .filter(|c| !c.is_empty())
                .unwrap_or(defaults.container),
            bucket,
        })
    }

    /// The defaults for `bucket`: prefix `executions/`, container `worker`.
    pub fn for_bucket(bucket: &str) -> HandoffConfig {
        HandoffConfig {
            bucket: bucket.into(),
            prefix: "executions/".into(),
            container: "worker".into(),
        }
    }

    pub fn layout(&self, execution: &str) -> Result<ExecutionLayout, Error> {
        ExecutionLayout::new(&self.bucket, &self.prefix, execution)
    }

    /// The execution folder and step a task's `BATON_OUTPUT` names
    /// (`s3://<bucket>/<prefix><execution>/<step>/…`), or `None` for an output
    /// elsewhere. A pipeline's steps run as executions of their own but keep their
    /// data in the pipeline's folder: this is the execution the user started.
    pub fn folder_of(&self, output_uri: &str) -> Option<(String, String)> {
        let output = crate::payload::S3Location::parse(output_uri).ok()?;
        let layout = ExecutionLayout::new(&self.bucket, &self.prefix, "x").ok()?;
        let rest = output
            .key
            .strip_prefix(&layout.prefix)
            .filter(|_| output.bucket == self.bucket)?;
        let mut parts = rest.splitn(3, '/');
        let (execution, step) = (parts.next()?, parts.next()?);
        (!execution.is_empty() && !step.is_empty()).then(|| (execution.into(), step.into()))
    }
}

/// Where one execution keeps its data: `s3://<bucket>/<prefix><execution>/…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionLayout {
    pub bucket: String,
    /// Key prefix of every execution, ending in `/` (default `executions/`).
    pub prefix: String,
    pub execution: String,
}

impl ExecutionLayout {
    pub fn new(bucket: &str, prefix: &str, execution: &str) -> Result<ExecutionLayout, Error> {
        validate_execution_name(execution)?;
        let mut prefix = prefix.trim_start_matches('/').to_string();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        Ok(ExecutionLayout {
            bucket: bucket.into(),
            prefix,
            execution: execution.into(),
        })
    }

    /// Key of an object of this execution, e.g. `executions/<name>/input`.
    pub fn key(&self, rest: &str) -> String {
        format!("{}{}/{rest}", self.prefix, self.execution)
    }

    /// `s3://bucket/executions/<name>/<step>/`: where a task writes its output.
    pub fn output_uri(&self, step: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.key(&format!("{step}/")))
    }
}

/// The step of a prepare-input or offload-output request that names none: its
/// data folder is `executions/<name>/task1/`.
///
/// `task1` is the first task of the `.sync` pipeline (statemachine/sync.asl.json),
/// the one state machine that calls prepare-input without a step: its RunTask2
/// reads `executions/<name>/task1/output`. Direct callers (events/prepare-input-*.json,
/// events/offload-output-*.json, their tests) rely on it too.
///
/// The reusable task state machine (statemachine/task.asl.json) defaults `step` to
/// `task` instead, in the defaults its PrepareInput state sends (prepare-input merges
/// the task's input over them and returns the step it decided, which its
/// OffloadOutput state passes on), so this default never applies to it: its executions are one task on
/// its own, not the first of two. The two defaults differ on purpose; the test
/// `crates/baton/tests/default_step.rs` checks that relationship.
pub const DEFAULT_STEP: &str = "task1";

/// The step a request names, or [`DEFAULT_STEP`].
pub fn step_or_default(step: Option<&str>) -> &str {
    step.unwrap_or(DEFAULT_STEP)
}

/// A step's name, a folder of the execution's prefix (`task1`, `task`, `merge`):
/// 1 to 32 ASCII letters, digits, `-` or `_`.
pub fn validate_step(step: &str) -> Result<(), Error> {
    validate_name("step", step, 32)
}

/// An ECS container name: 1 to 255 ASCII letters, digits, `-` or `_` (ECS API
/// reference, ContainerDefinition `name`).
pub fn validate_container(name: &str) -> Result<(), Error> {
    validate_name("container", name, 255)
}

fn validate_name(what: &str, name: &str, max: usize) -> Result<(), Error> {
    let ok = (1..=max).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "{what} {name:?} must be 1 to {max} letters, digits, '-' or '_'"
        )))
    }
}

/// Step Functions execution names: 1 to 80 characters, no `/` (it would escape
/// the execution's prefix), no whitespace or control characters.
pub fn validate_execution_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.chars().count() <= 80
        && !name.contains('/')
        && name != "."
        && name != ".."
        && !name.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "execution name {name:?} must be 1 to 80 characters without '/', spaces or control characters"
        )))
    }
}

/// What a Lambda hands to the next ECS task state: the Payload (for people and
/// for the execution history), the same as JSON text for the `BATON_INPUT`
/// environment override, and the S3 prefix for the task's output (`BATON_OUTPUT`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskInput {
    pub payload: Payload,
    pub baton_input: String,
    pub baton_output: String,
}

/// Settings of the container the Payload goes to.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// Name of the container whose override carries the Payload.
    pub container: &'a str,
    /// `BATON_OUTPUT` for the task.
    pub output_uri: String,
}

/// Make `payload` fit the target's override: pointers pass through, inline data
/// that fits stays inline, anything larger is stored at `stage_key` with its
/// sha256 and replaced by a pointer.
pub async fn fit_to_override(
    store: &Store,
    payload: Payload,
    target: &Target<'_>,
    stage_bucket: &str,
    stage_key: &str,
) -> Result<TaskInput, Error> {
    let other_env = [EnvEntry {
        name: "BATON_OUTPUT",
        value: &target.output_uri,
    }];
    let payload = match payload {
        fits if fits_override(target.container, &other_env, &fits) => fits,
        Payload::Inline(value) => {
            Payload::S3(stage_inline(store, &value, stage_bucket, stage_key).await?)
        }
        manifest @ Payload::Manifest(_) => {
            // Too many entries for the override: the manifest's JSON in S3, read
            // back as the manifest by whoever gets the pointer.
            let text = manifest.to_json();
            tracing::info!(
                stage_bucket,
                stage_key,
                chars = text.len(),
                "manifest too large for the override; storing it in S3"
            );
            Payload::S3(
                store
                    .put(
                        stage_bucket,
                        stage_key,
                        text.as_bytes(),
                        Some(crate::payload::MANIFEST_CONTENT_TYPE),
                    )
                    .await?,
            )
        }
        pointer @ Payload::S3(_) => {
            return Err(Error::InvalidInput(format!(
                "even as a pointer the Payload does not fit the 8,192-character ECS override: {} characters",
                pointer.json_chars()
            )));
        }
    };
    Ok(TaskInput {
        baton_input: payload.to_json(),
        payload,
        baton_output: target.output_uri.clone(),
    })
}

async fn stage_inline(
    store: &Store,
    value: &Value,
    bucket: &str,
    key: &str,
) -> Result<crate::payload::S3Pointer, Error> {
    let bytes = inline_bytes(value);
    tracing::info!(
        bucket,
        key,
        bytes = bytes.len(),
        "inline data too large for the override; staging it in S3"
    );
    store
        .put(
            bucket,
            key,
            bytes.as_slice(),
            Some(inline_content_type(value)),
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_containers_stay_names() {
        for ok in ["task1", "task", "merge_2", "a-b"] {
            validate_step(ok).unwrap();
            validate_container(ok).unwrap();
        }
        for bad in ["", "..", "a/b", "a b", "é", &"x".repeat(33)] {
            assert!(validate_step(bad).is_err(), "{bad:?}");
        }
        assert!(validate_container(&"x".repeat(255)).is_ok());
        assert!(validate_container("worker/1").is_err());
    }

    #[test]
    fn config_needs_a_bucket_and_has_defaults() {
        let err = HandoffConfig::from_lookup(|_| None).unwrap_err();
        assert!(err.to_string().contains("BATON_BUCKET"));
        let c =
            HandoffConfig::from_lookup(|n| (n == "BATON_BUCKET").then(|| "b".to_string())).unwrap();
        assert_eq!(
            (c.prefix.as_str(), c.container.as_str()),
            ("executions/", "worker")
        );
    }

    #[test]
    fn layout_keys() {
        let l = ExecutionLayout::new("b", "executions", "run-1").unwrap();
        assert_eq!(l.key("input"), "executions/run-1/input");
        assert_eq!(l.output_uri("task1"), "s3://b/executions/run-1/task1/");
        let l = ExecutionLayout::new("b", "", "run-1").unwrap();
        assert_eq!(l.key("input"), "run-1/input");
    }

    #[test]
    fn an_outputs_folder_names_the_execution_and_the_step() {
        let mut c = HandoffConfig::for_bucket("b");
        let folder = |c: &HandoffConfig, uri| c.folder_of(uri);
        let pair = |e: &str, s: &str| Some((e.to_string(), s.to_string()));
        assert_eq!(
            folder(&c, "s3://b/executions/demo-7/task2/"),
            pair("demo-7", "task2")
        );
        assert_eq!(
            folder(&c, "s3://b/executions/demo-7/task2/result.json"),
            pair("demo-7", "task2")
        );
        for elsewhere in [
            "s3://other/executions/demo-7/task2/",
            "s3://b/mine/demo-7/task2/",
            "s3://b/executions/demo-7",
            "s3://b/executions//task2/",
            "not a uri",
        ] {
            assert_eq!(folder(&c, elsewhere), None, "{elsewhere}");
        }
        c.prefix = "runs".into();
        assert_eq!(folder(&c, "s3://b/runs/r/merge/"), pair("r", "merge"));
    }

    #[test]
    fn bad_execution_names() {
        for bad in ["", "a/b", "..", "a b", &"x".repeat(81), "tab\t"] {
            assert!(validate_execution_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_execution_name("demo-2026_11_22").is_ok());
    }
}
