//! Validates the execution input, pins or stages it, and returns task 1's input.

use baton::handoff::{
    ExecutionLayout, HandoffConfig, Target, TaskInput, fit_to_override, step_or_default,
};
use baton::payload::{Payload, S3Location, S3Pointer};
use baton::{Error, Store};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The state's input: the execution name (from `$$.Execution.Name`) and the
/// execution input's `input` field; for the reusable task state machine also the
/// container that takes the Payload and the step's name.
#[derive(Debug, Clone, Deserialize)]
pub struct Request {
    pub execution: String,
    /// `"s3://bucket/key"`, `{"inline": …}` or `{"s3": {…}}`.
    pub input: Value,
    /// The container whose override carries the Payload (default `BATON_CONTAINER`).
    #[serde(default)]
    pub container: Option<String>,
    /// The step whose input this is: its output goes to `executions/<name>/<step>/`
    /// (default [`baton::handoff::DEFAULT_STEP`]).
    #[serde(default)]
    pub step: Option<String>,
    /// When `input` is a Map's results (a fan-in): the share of failed items, in
    /// percent, that still lets the rest through (default 0: any failure fails).
    #[serde(default, rename = "toleratedFailurePercentage")]
    pub tolerated_failure_percentage: Option<f64>,
    /// When `input` is a Distributed Map's results: how many failed items still let
    /// the rest through (with the percentage, as the Map state reads its own two).
    #[serde(default, rename = "toleratedFailureCount")]
    pub tolerated_failure_count: Option<u64>,
}

/// The reusable task state machine's settings, as its later states read them
/// (`$.task.*`): its input over its defaults, decided here so that the state
/// machine needs no Pass state for them (each state entered is a billed transition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskSettings {
    pub task_definition: String,
    pub container: String,
    pub execution: String,
    pub step: String,
    pub heartbeat_seconds: u64,
    pub timeout_seconds: u64,
}

/// What prepare-input returns: the task's input, and for the reusable task state
/// machine its settings too.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prepared {
    #[serde(flatten)]
    pub input: TaskInput,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskSettings>,
}

pub struct PrepareInput {
    store: Store,
    config: HandoffConfig,
}

impl PrepareInput {
    pub fn new(store: Store, config: HandoffConfig) -> PrepareInput {
        PrepareInput { store, config }
    }

    pub async fn handle(&self, event: Value) -> Result<Prepared, Error> {
        let (event, task) = task_request(event)?;
        let (request, layout, input) = parse(event, &self.config)?;
        let step = step_or_default(request.step.as_deref());
        let payload = self.payload_of(input, &request, &layout, step).await?;
        let target = Target {
            container: request
                .container
                .as_deref()
                .unwrap_or(&self.config.container),
            output_uri: layout.output_uri(step),
        };
        let input = fit_to_override(
            &self.store,
            payload,
            &target,
            &layout.bucket,
            // A step's own input key: steps (and a Map's items) may share a folder.
            &layout.key(&match &request.step {
                Some(step) => format!("{step}/input"),
                None => "input".into(),
            }),
        )
        .await?;
        tracing::info!(execution = %request.execution, step, payload = %input.baton_input, "prepared a task's input");
        Ok(Prepared { input, task })
    }

    async fn payload_of(
        &self,
        input: Input,
        request: &Request,
        layout: &ExecutionLayout,
        step: &str,
    ) -> Result<Payload, Error> {
        match input {
            Input::Object(_) | Input::Pointer(_) => self.one_payload(input).await,
            Input::Inline(inline) => Ok(inline),
            Input::Batch(inputs) => {
                // Checked sixteen at a time, kept in order.
                use futures::stream::{self, StreamExt, TryStreamExt};
                let entries: Vec<Payload> = stream::iter(inputs)
                    .map(|input| self.one_payload(input))
                    .buffered(16)
                    .try_collect()
                    .await?;
                if let Some(i) = entries
                    .iter()
                    .position(|e| matches!(e, Payload::Manifest(_)))
                {
                    return Err(Error::InvalidInput(format!(
                        "batch entry {i} is a manifest: a batch's entries are objects or Payloads"
                    )));
                }
                Ok(Payload::Manifest(entries))
            }
            Input::MapResults(results) => {
                let tolerance = baton::map_results::Tolerance::of_map(
                    request.tolerated_failure_percentage,
                    request.tolerated_failure_count,
                );
                // Its chunks and its list of failed items go to the step's folder.
                let out = baton::map_results::OutputPlace::new(
                    layout.bucket.clone(),
                    layout.key(&format!("{step}/")),
                );
                let merged =
                    baton::map_results::merge(&self.store, &results, &out, tolerance).await?;
                if let Some(list) = &merged.failure_list {
                    tracing::warn!(
                        failed = merged.counts.failed,
                        pending = merged.counts.pending,
                        list = list.as_str(),
                        "items failed or did not run, within the tolerance"
                    );
                }
                tracing::info!(
                    results = merged.results.as_str(),
                    succeeded = merged.counts.succeeded,
                    chunks = merged.chunks,
                    "merged a Distributed Map's results"
                );
                Ok(merged.payload)
            }
            Input::Items(items) => {
                let tolerated = request.tolerated_failure_percentage.unwrap_or(0.0);
                let gathered = baton::fanin::gather(&items, tolerated)?;
                if !gathered.failed.is_empty() {
                    tracing::warn!(report = %gathered.report(tolerated), "items failed, within the tolerated share");
                }
                Ok(gathered.manifest)
            }
        }
    }

    /// An object pinned by its ETag (HeadObject), or a pointer checked against its
    /// object; inline data as it is.
    async fn one_payload(&self, input: Input) -> Result<Payload, Error> {
        match input {
            Input::Object(location) => Ok(Payload::S3(
                self.store.head(&location.bucket, &location.key).await?,
            )),
            Input::Pointer(pointer) => {
                // Check the object is there and as described; pin it when the
                // pointer carries nothing to verify it by.
                let found = self.store.head(&pointer.bucket, &pointer.key).await?;
                if found.size != pointer.size {
                    return Err(Error::InputIntegrity(format!(
                        "{} has {} bytes, the pointer says {}",
                        pointer.uri(),
                        found.size,
                        pointer.size
                    )));
                }
                let mut pointer = pointer;
                if pointer.sha256.is_none() && pointer.etag.is_none() {
                    pointer.etag = found.etag;
                    pointer.version_id = pointer.version_id.or(found.version_id);
                }
                Ok(Payload::S3(pointer))
            }
            Input::Inline(inline) => Ok(inline),
            _ => Err(Error::InvalidInput(
                "a batch's entries are objects or Payloads".into(),
            )),
        }
    }
}

/// What the execution's `input` names, decided without AWS.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// `"s3://bucket/key"`: a user's object, pinned by its ETag (HeadObject).
    Object(S3Location),
    /// `{"s3": {…}}`: checked with HeadObject, pinned when it carries no sha256 or ETag.
    Pointer(S3Pointer),
    /// `{"inline": …}`.
    Inline(Payload),
    /// `[…]`: a Map's results, gathered into a manifest (a fan-in).
    Items(Vec<Value>),
    /// `{"mapResults": "s3://bucket/prefix/"}` (the ResultWriter's prefix, or its
    /// `…/manifest.json`) or `{"mapResults": <the Distributed Map state's output>}`:
    /// every item's output, merged in item order ([`baton::map_results`]).
    MapResults(baton::map_results::MapResults),
    /// `{"batch": [<input>, …]}`: a Distributed Map's batch (ItemBatcher's `Items`,
    /// each `{"index", "input"}` or an input as it is), read as one manifest, in order:
    /// each input pinned or checked as above.
    Batch(Vec<Input>),
}

/// The reusable task state machine sends `{"task": <its input>, "defaults": {…}}`:
/// the input over the defaults (a shallow merge, as `States.JsonMerge` does) is the
/// request, and its settings are checked here, so that a missing task definition or
/// a heartbeat not below the timeout is `Baton.InvalidInput` before any task starts.
/// Any other event (the `.sync` pipeline's) is the request as it is. Pure.
pub fn task_request(event: Value) -> Result<(Value, Option<TaskSettings>), Error> {
    let Value::Object(mut fields) = event else {
        return Ok((event, None));
    };
    let Some(task) = fields.remove("task") else {
        return Ok((Value::Object(fields), None));
    };
    let (Value::Object(task), Some(Value::Object(mut merged))) = (task, fields.remove("defaults"))
    else {
        return Err(Error::InvalidInput(
            "the task state machine sends {\"task\": <its input object>, \"defaults\": {…}}; its input must be a JSON object".into(),
        ));
    };
    merged.extend(task);
    let settings = task_settings(&merged)?;
    Ok((Value::Object(merged), Some(settings)))
}

fn task_settings(merged: &Map<String, Value>) -> Result<TaskSettings, Error> {
    let text = |name: &str| match merged.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(Error::InvalidInput(format!(
            "the task's input needs \"{name}\" (a non-empty string)"
        ))),
    };
    let seconds = |name: &str| {
        merged
            .get(name)
            .and_then(Value::as_u64)
            .filter(|s| *s >= 1)
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "\"{name}\" must be a whole number of seconds, at least 1; got {}",
                    merged.get(name).unwrap_or(&Value::Null)
                ))
            })
    };
    let settings = TaskSettings {
        task_definition: text("taskDefinition")?,
        container: text("container")?,
        execution: text("execution")?,
        step: text("step")?,
        heartbeat_seconds: seconds("heartbeatSeconds")?,
        timeout_seconds: seconds("timeoutSeconds")?,
    };
    // Step Functions' rule for HeartbeatSeconds (ASL specification, Task state).
    if settings.heartbeat_seconds >= settings.timeout_seconds {
        return Err(Error::InvalidInput(format!(
            "heartbeatSeconds ({}) must be below timeoutSeconds ({})",
            settings.heartbeat_seconds, settings.timeout_seconds
        )));
    }
    Ok(settings)
}

/// One input: an object's URI, or a Payload that is not a manifest of its own.
fn one_input(value: &Value) -> Result<Input, Error> {
    Ok(match value {
        Value::String(uri) => {
            let location = S3Location::parse(uri)?;
            if location.key.is_empty() || location.key.ends_with('/') {
                return Err(Error::InvalidInput(format!(
                    "{uri} names a prefix, not an object"
                )));
            }
            Input::Object(location)
        }
        other => match Payload::from_value(other)? {
            Some(Payload::S3(pointer)) => Input::Pointer(pointer),
            Some(inline) => Input::Inline(inline),
            None => return Err(Error::InvalidInput(
                "\"input\" must be an s3://bucket/key URI, {\"inline\": <JSON>} or {\"s3\": {\"bucket\", \"key\", \"size\", …}}".into(),
            )),
        },
    })
}

/// Decode the state's input: the request, the execution's S3 layout and what the
/// input names. Pure, so the fuzz target `lambda_input` can drive it.
pub fn parse(
    event: Value,
    config: &HandoffConfig,
) -> Result<(Request, ExecutionLayout, Input), Error> {
    let request: Request = serde_json::from_value(event).map_err(|e| {
        Error::InvalidInput(format!(
            "expected {{\"execution\": \"<name>\", \"input\": \"s3://bucket/key\" or a Payload}}: {e}"
        ))
    })?;
    let layout = config.layout(&request.execution)?;
    if let Some(step) = &request.step {
        baton::handoff::validate_step(step)?;
    }
    if let Some(container) = &request.container {
        baton::handoff::validate_container(container)?;
    }
    let input = match &request.input {
        Value::Array(items) => Input::Items(items.clone()),
        Value::Object(fields) if fields.len() == 1 && fields.contains_key("mapResults") => {
            Input::MapResults(match &fields["mapResults"] {
                Value::String(uri) => baton::map_results::MapResults::from_uri(uri)?,
                output => baton::map_results::MapResults::from_map_output(output)?,
            })
        }
        Value::Object(fields) if fields.len() == 1 && fields.contains_key("batch") => {
            let Value::Array(items) = &fields["batch"] else {
                return Err(Error::InvalidInput(
                    "\"batch\" must be an array of inputs".into(),
                ));
            };
            if items.is_empty() {
                return Err(Error::InvalidInput("\"batch\" is empty".into()));
            }
            let one = |item: &Value| match item {
                Value::Object(o) if o.contains_key("index") && o.contains_key("input") => {
                    one_input(&o["input"])
                }
                other => one_input(other),
            };
            Input::Batch(items.iter().map(one).collect::<Result<_, _>>()?)
        }
        other => one_input(other)?,
    };
    Ok((request, layout, input))
}
