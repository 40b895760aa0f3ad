//! `baton logs`: the logs of every ECS task of an execution and of its steps, from
//! the local stack's files or CloudWatch Logs.

use std::collections::HashMap;

use aws_config::Region;
use clap::ValueEnum;
use serde_json::{Value, json};

use baton_cli::exit;
use baton_cli::history;

use super::follow::whole_history;
use crate::context::{Ctx, call};
use crate::output::{Failure, Outcome};

/// At most this many GetLogEvents pages a stream (up to 1 MB or 10,000 events each).
const MAX_LOG_PAGES: usize = 1_000;

#[derive(Clone, Copy, ValueEnum)]
pub enum LogsFrom {
    Auto,
    Files,
    Cloudwatch,
}

/// Where a task's logs are: files on the local stack, CloudWatch Logs on AWS.
enum LogSource {
    /// `{task_id}` replaced.
    Files(String),
    CloudWatch,
}

impl LogSource {
    /// Files where the local stack's settings say so: `BATON_TASK_LOGS` (its
    /// stack.env), else, with `AWS_ENDPOINT_URL` set, `<BATON_LOCAL_STATE or
    /// .local>/logs/<task id>.log` (local/fargate writes them there).
    fn from_env(from: LogsFrom) -> LogSource {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if matches!(from, LogsFrom::Cloudwatch) {
            return LogSource::CloudWatch;
        }
        if let Some(template) = var("BATON_TASK_LOGS") {
            return LogSource::Files(template);
        }
        if var("AWS_ENDPOINT_URL").is_some() || matches!(from, LogsFrom::Files) {
            let state = var("BATON_LOCAL_STATE").unwrap_or_else(|| ".local".into());
            return LogSource::Files(format!("{state}/logs/{{task_id}}.log"));
        }
        LogSource::CloudWatch
    }
}

pub async fn logs(ctx: &Ctx, arn: &str, from: LogsFrom) -> Result<Outcome, Failure> {
    let source = LogSource::from_env(from);
    let mut queue = vec![arn.to_string()];
    let mut tasks = Vec::new();
    while let Some(execution) = queue.pop() {
        let events = whole_history(ctx, &execution).await?;
        let found = history::started(&events);
        let name = execution
            .rsplit(':')
            .next()
            .unwrap_or(&execution)
            .to_string();
        tasks.extend(found.tasks.into_iter().map(|t| (name.clone(), t)));
        // Depth first, in order.
        queue.extend(found.executions.into_iter().rev());
    }
    let ecs = aws_sdk_ecs::Client::new(&ctx.sdk);
    let mut definitions = Definitions::new();
    let mut out = Vec::new();
    let mut text = Vec::new();
    for (execution, task) in tasks {
        let state = task.state.clone().unwrap_or_default();
        let mut entry = json!({
            "execution": execution,
            "state": state,
            "taskArn": task.arn,
            "taskId": task.id(),
        });
        let read = match &source {
            LogSource::Files(template) => {
                let path = template.replace("{task_id}", task.id());
                entry["source"] = json!(path);
                match std::fs::read_to_string(&path) {
                    Ok(body) => Ok(body.lines().map(String::from).collect::<Vec<_>>()),
                    Err(e) => Err(format!("{path}: {e}")),
                }
            }
            LogSource::CloudWatch => {
                match cloudwatch_lines(ctx, &ecs, &task, &mut definitions).await? {
                    (streams, Ok(lines)) => {
                        entry["source"] = json!(streams);
                        Ok(lines)
                    }
                    (streams, Err(e)) => {
                        entry["source"] = json!(streams);
                        Err(e)
                    }
                }
            }
        };
        let source_text = match &entry["source"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        text.push(format!(
            "==> {execution} {state} task {} ({source_text})",
            task.id()
        ));
        match read {
            Ok(lines) => {
                text.extend(lines.iter().cloned());
                entry["lines"] = json!(lines);
            }
            Err(e) => {
                text.push(format!("(no log: {e})"));
                entry["lines"] = json!([]);
                entry["error"] = json!(e);
            }
        }
        out.push(entry);
    }
    if out.is_empty() {
        eprintln!("no ECS task in {arn} or its steps");
    }
    Ok(Outcome {
        code: exit::SUCCEEDED,
        document: json!({"executionArn": arn, "tasks": out}),
        line: text.join("\n"),
    })
}

/// A container of a task definition that logs with the `awslogs` driver.
#[derive(Clone)]
struct AwsLogs {
    container: String,
    group: String,
    prefix: Option<String>,
    region: Option<String>,
}

/// The `awslogs` containers of each task definition read so far.
type Definitions = HashMap<String, Vec<AwsLogs>>;

/// A task's lines in CloudWatch Logs: its task definition's `awslogs` containers
/// (DescribeTaskDefinition; DescribeTasks when the history does not name the
/// definition), each container's stream `<prefix>/<container>/<task id>` read from
/// its head (GetLogEvents). The streams, and the lines or why there are none.
async fn cloudwatch_lines(
    ctx: &Ctx,
    ecs: &aws_sdk_ecs::Client,
    task: &history::EcsTask,
    definitions: &mut Definitions,
) -> Result<(Vec<String>, Result<Vec<String>, String>), Failure> {
    let definition = match &task.task_definition {
        Some(d) => d.clone(),
        None => {
            // arn:aws:ecs:<region>:<account>:task/<cluster>/<id>
            let cluster = task.arn.split('/').nth(1).unwrap_or_default().to_string();
            let described = call("DescribeTasks", || {
                ecs.describe_tasks()
                    .cluster(&cluster)
                    .tasks(&task.arn)
                    .send()
            })
            .await?;
            match described
                .tasks()
                .first()
                .and_then(|t| t.task_definition_arn())
            {
                Some(d) => d.to_string(),
                None => {
                    return Ok((
                        vec![],
                        Err("ECS no longer describes the task (kept about an hour after it stops), and the history names no task definition".into()),
                    ));
                }
            }
        }
    };
    if !definitions.contains_key(&definition) {
        let described = call("DescribeTaskDefinition", || {
            ecs.describe_task_definition()
                .task_definition(&definition)
                .send()
        })
        .await?;
        let containers = described
            .task_definition()
            .map(|d| d.container_definitions())
            .unwrap_or_default()
            .iter()
            .filter_map(|c| {
                let config = c.log_configuration()?;
                if config.log_driver().as_str() != "awslogs" {
                    return None;
                }
                let options = config.options()?;
                let group = options.get("awslogs-group")?.clone();
                Some(AwsLogs {
                    container: c.name().unwrap_or_default().to_string(),
                    group,
                    prefix: options.get("awslogs-stream-prefix").cloned(),
                    region: options.get("awslogs-region").cloned(),
                })
            })
            .collect();
        definitions.insert(definition.clone(), containers);
    }
    let containers = definitions[&definition].clone();
    if containers.is_empty() {
        return Ok((
            vec![],
            Err(format!(
                "{definition} sends no container's logs to CloudWatch Logs (awslogs)"
            )),
        ));
    }
    let mut streams = Vec::new();
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    for AwsLogs {
        container,
        group,
        prefix,
        region,
    } in containers
    {
        let stream = history::log_stream(prefix.as_deref(), &container, task.id());
        streams.push(format!("{group}/{stream}"));
        let mut conf = aws_sdk_cloudwatchlogs::config::Builder::from(&ctx.sdk);
        if let Some(region) = region {
            conf = conf.region(Region::new(region));
        }
        let cw = aws_sdk_cloudwatchlogs::Client::from_conf(conf.build());
        let mut token: Option<String> = None;
        // An empty page is not the end (pages are cut by time): only the same forward
        // token again is. A bound on the pages, for a stream still being written.
        for _ in 0..MAX_LOG_PAGES {
            let page = call("GetLogEvents", || {
                cw.get_log_events()
                    .log_group_name(&group)
                    .log_stream_name(&stream)
                    .start_from_head(true)
                    .set_next_token(token.clone())
                    .send()
            })
            .await;
            let page = match page {
                Ok(page) => page,
                Err(f) => {
                    errors.push(f.message);
                    break;
                }
            };
            lines.extend(
                page.events()
                    .iter()
                    .filter_map(|e| e.message().map(String::from)),
            );
            // The end: the same forward token again (CloudWatch Logs API reference,
            // GetLogEvents: "Partially full or empty pages don't necessarily mean that
            // pagination is finished").
            let next = page.next_forward_token().map(String::from);
            if next.is_none() || next == token {
                break;
            }
            token = next;
        }
    }
    let read = if lines.is_empty() && !errors.is_empty() {
        Err(errors.join("; "))
    } else {
        Ok(lines)
    };
    Ok((streams, read))
}
