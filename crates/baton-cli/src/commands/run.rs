//! `baton run`: start the pipeline on an input (a local file uploaded first) and
//! follow it, or print its ARN (`--detach`).

use serde_json::{Value, json};

use baton_cli::exit;

use super::follow::follow;
use crate::context::{Ctx, call};
use crate::output::{Failure, Outcome, time};

pub async fn run(
    ctx: &Ctx,
    input: &str,
    name: Option<String>,
    bucket: Option<String>,
    detach: bool,
) -> Result<Outcome, Failure> {
    let state_machine = ctx.state_machine().await?;
    let input_value = if input.starts_with("s3://") {
        json!(input)
    } else if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(input) {
        v
    } else {
        let path = std::path::Path::new(input);
        if !path.is_file() {
            return Err(Failure::local(format!(
                "{input}: no such file (and neither s3://bucket/key nor a JSON Payload)"
            )));
        }
        let bucket = match bucket.filter(|b| !b.is_empty()) {
            Some(b) => b,
            None => ctx.stack_output("BucketName").await?,
        };
        json!(upload(ctx, path, &bucket).await?)
    };
    let name = name.unwrap_or_else(|| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        format!("run-{secs}-{}", std::process::id())
    });
    let body = json!({ "input": input_value }).to_string();
    let started = call("StartExecution", || {
        ctx.sfn
            .start_execution()
            .state_machine_arn(&state_machine)
            .name(&name)
            .input(&body)
            .send()
    })
    .await?;
    let arn = started.execution_arn().to_string();
    eprintln!("execution {name}\n  {arn}");
    if detach {
        return Ok(Outcome {
            code: exit::SUCCEEDED,
            document: json!({"executionArn": arn, "name": name, "status": "RUNNING",
                             "startDate": time(started.start_date())}),
            line: arn,
        });
    }
    follow(ctx, &arn, 0).await
}

/// Upload a local file to `s3://bucket/inbox/<file name>`; its URI.
async fn upload(ctx: &Ctx, path: &std::path::Path, bucket: &str) -> Result<String, Failure> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "input".into());
    let key = format!("inbox/{file_name}");
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Failure::local(format!("{}: {e}", path.display())))?;
    let store = baton::store::Store::new(baton::aws::s3_client(&ctx.sdk));
    let pointer = store
        .put(bucket, &key, file, None)
        .await
        .map_err(|e| Failure::aws_text(format!("uploading {}: {e}", path.display())))?;
    eprintln!(
        "uploaded {} to {} ({} bytes)",
        path.display(),
        pointer.uri(),
        pointer.size
    );
    Ok(pointer.uri())
}
