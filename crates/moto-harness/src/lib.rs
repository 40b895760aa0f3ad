//! Test support: start a real moto server from the project's virtualenv, point SDK
//! configuration at it, and a few helpers tests share (deterministic data, peak RSS,
//! an execution waiting on a task token).

mod hop;
pub use hop::{BodyFault, FaultyHop};

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sfn::config::Credentials;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, ReadBuf};

/// A moto server on 127.0.0.1, killed when dropped.
pub struct Moto {
    pub port: u16,
    pub endpoint: String,
    pub log: PathBuf,
    child: Child,
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl Moto {
    /// Start moto with Step Functions really executing state machines.
    pub fn start() -> Moto {
        let server = std::env::var_os("BATON_MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join(".venv/bin/moto_server"));
        assert!(
            server.exists(),
            "moto_server not found at {}: run `make venv` (make test does it) or set BATON_MOTO_SERVER",
            server.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = std::env::temp_dir().join(format!("baton-moto-{port}.log"));
        let log_file = std::fs::File::create(&log).expect("moto log file");
        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // moto's state machine interpreter calls other services at localhost:$MOTO_PORT.
            .env("MOTO_PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", server.display()));
        let moto = Moto {
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while moto.request("GET", "/moto-api/", "", "").is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not start; see {}",
                moto.log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // Must come before any state machine is created.
        moto.request(
            "POST",
            "/moto-api/config",
            "application/json",
            r#"{"stepfunctions":{"execute_state_machine":true}}"#,
        )
        .expect("enable Step Functions execution in moto");
        moto
    }

    /// SDK configuration for this server (dummy credentials, us-east-1).
    pub async fn sdk_config(&self) -> SdkConfig {
        sdk_config_for(&self.endpoint).await
    }

    /// One plain HTTP/1.0 request; the response body. For moto's own API and the
    /// odd call no SDK crate in the workspace covers.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> std::io::Result<String> {
        self.signed_request(method, path, content_type, body, None)
    }

    fn signed_request(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &str,
        service: Option<&str>,
    ) -> std::io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let auth = service
            .map(|s| {
                format!(
                    "Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{s}/aws4_request, SignedHeaders=host, Signature=0\r\n"
                )
            })
            .unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Type: {content_type}\r\n{auth}Content-Length: {}\r\n\r\n{body}",
            self.port,
            body.len()
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        if !head.starts_with("HTTP/1.1 2") && !head.starts_with("HTTP/1.0 2") {
            return Err(std::io::Error::other(format!(
                "{method} {path}: {head}\n{body}"
            )));
        }
        Ok(body.to_string())
    }

    /// Create an S3 bucket.
    pub fn create_bucket(&self, name: &str) {
        self.signed_request(
            "PUT",
            &format!("/{name}"),
            "application/xml",
            "",
            Some("s3"),
        )
        .unwrap_or_else(|e| panic!("CreateBucket {name}: {e}"));
    }

    /// Create an SQS queue (the target of a `.waitForTaskToken` state that gives a
    /// test a real task token without ECS); returns its URL.
    pub fn create_queue(&self, name: &str) -> String {
        let body = self
            .signed_request(
                "POST",
                "/",
                "application/x-www-form-urlencoded",
                &format!("Action=CreateQueue&QueueName={name}&Version=2012-11-05"),
                Some("sqs"),
            )
            .expect("CreateQueue");
        let start = body.find("<QueueUrl>").expect("QueueUrl in response") + "<QueueUrl>".len();
        let end = body.find("</QueueUrl>").expect("QueueUrl end");
        body[start..end].to_string()
    }
}

impl Moto {
    /// The default VPC's first subnet and security group (moto makes them), for
    /// Fargate `RunTask` calls, which moto validates.
    pub fn default_network(&self) -> (String, String) {
        let first = |action: &str, tag: &str| {
            let body = self
                .signed_request(
                    "POST",
                    "/",
                    "application/x-www-form-urlencoded",
                    &format!("Action={action}&Version=2016-11-15"),
                    Some("ec2"),
                )
                .unwrap_or_else(|e| panic!("{action}: {e}"));
            xml_text(&body, tag)
        };
        (
            first("DescribeSubnets", "subnetId"),
            first("DescribeSecurityGroups", "groupId"),
        )
    }
}

impl Moto {
    /// An IAM user with `policy` (a JSON policy document) as its inline policy, and
    /// SDK configuration signing with its own access key: for a test that needs a
    /// call refused as AWS refuses it. The refusals start once [`Moto::enforce_iam`]
    /// turns moto's IAM checks on.
    pub async fn iam_user_config(&self, name: &str, policy: &str) -> SdkConfig {
        let iam = |action: &str, params: &str| {
            self.signed_request(
                "POST",
                "/",
                "application/x-www-form-urlencoded",
                &format!("Action={action}&Version=2010-05-08&UserName={name}{params}"),
                Some("iam"),
            )
            .unwrap_or_else(|e| panic!("{action}: {e}"))
        };
        iam("CreateUser", "");
        iam(
            "PutUserPolicy",
            &format!("&PolicyName=test&PolicyDocument={}", form_encode(policy)),
        );
        let key = iam("CreateAccessKey", "");
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                xml_text(&key, "AccessKeyId"),
                xml_text(&key, "SecretAccessKey"),
                None,
                None,
                "moto-harness-iam-user",
            ))
            .load()
            .await
    }

    /// Turn moto's IAM checks on (each request is evaluated against its caller's
    /// policies, and must be signed with an access key moto issued: the default
    /// `test` key is then refused) or off again.
    pub fn enforce_iam(&self, on: bool) {
        let count = if on { "0" } else { "inf" };
        self.request("POST", "/moto-api/reset-auth", "application/json", count)
            .expect("moto reset-auth");
    }
}

/// The text of the first `<tag>` element of a Query API answer.
fn xml_text(body: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = body
        .find(&open)
        .unwrap_or_else(|| panic!("no {tag} in {body}"))
        + open.len();
    let end = start + body[start..].find('<').expect("closing tag");
    body[start..end].to_string()
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A state machine with one `.waitForTaskToken` state (SQS send), for tests that
/// need executions waiting on real task tokens.
pub struct TokenMachine {
    pub sfn: aws_sdk_sfn::Client,
    pub arn: String,
}

impl TokenMachine {
    pub async fn create(
        moto: &Moto,
        config: &SdkConfig,
        name: &str,
        heartbeat_seconds: Option<u32>,
    ) -> TokenMachine {
        let queue = moto.create_queue(&format!("{name}-tokens"));
        let mut state = serde_json::json!({
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
            "End": true
        });
        if let Some(h) = heartbeat_seconds {
            state["HeartbeatSeconds"] = h.into();
        }
        let definition = serde_json::json!({"StartAt": "Wait", "States": {"Wait": state}});
        let sfn = aws_sdk_sfn::Client::new(config);
        let arn = sfn
            .create_state_machine()
            .name(name)
            .definition(definition.to_string())
            .role_arn("arn:aws:iam::123456789012:role/baton-test")
            .send()
            .await
            .expect("CreateStateMachine")
            .state_machine_arn;
        TokenMachine { sfn, arn }
    }

    /// Start an execution and return its ARN and task token once it waits.
    pub async fn start(&self, name: &str) -> (String, String) {
        let execution = self
            .sfn
            .start_execution()
            .state_machine_arn(&self.arn)
            .name(name)
            .input("{}")
            .send()
            .await
            .expect("StartExecution")
            .execution_arn;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let history = self
                .sfn
                .get_execution_history()
                .execution_arn(&execution)
                .send()
                .await
                .expect("GetExecutionHistory");
            let token = history.events().iter().find_map(|e| {
                let params = e.task_scheduled_event_details()?.parameters();
                let v: serde_json::Value = serde_json::from_str(params).ok()?;
                v["MessageBody"]["token"].as_str().map(String::from)
            });
            if let Some(token) = token {
                return (execution, token);
            }
            assert!(
                Instant::now() < deadline,
                "execution {name} never waited on a token"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until the execution leaves RUNNING (or `timeout` passes); its
    /// status and error.
    pub async fn settle(&self, execution: &str, timeout: Duration) -> (String, Option<String>) {
        let deadline = Instant::now() + timeout;
        loop {
            let d = self
                .sfn
                .describe_execution()
                .execution_arn(execution)
                .send()
                .await
                .expect("DescribeExecution");
            let status = d.status().as_str().to_string();
            if status != "RUNNING" || Instant::now() >= deadline {
                return (status, d.error().map(String::from));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Deterministic pseudo-random bytes (xorshift), `len` of them, without holding
/// them in memory.
pub struct PatternReader {
    state: u64,
    left: u64,
}

impl PatternReader {
    /// `len` bytes of a xorshift sequence; seeds that differ only in their lowest
    /// bit give the same bytes.
    pub fn new(len: u64, seed: u64) -> PatternReader {
        PatternReader {
            state: seed | 1,
            left: len,
        }
    }

    /// The sha256 of `PatternReader::new(len, seed)`'s bytes.
    pub fn sha256(len: u64, seed: u64) -> String {
        let mut r = PatternReader::new(len, seed);
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = r.fill(&mut buf);
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        hex::encode(hasher.finalize())
    }

    fn fill(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.left as usize);
        for chunk in out[..n].chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            chunk.copy_from_slice(&self.state.to_le_bytes()[..chunk.len()]);
        }
        self.left -= n as u64;
        n
    }
}

impl AsyncRead for PatternReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self.fill(buf.initialize_unfilled());
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

/// SDK configuration for a local endpoint (this server, or a hop in front of it):
/// dummy credentials, us-east-1.
pub async fn sdk_config_for(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto-harness"))
        .load()
        .await
}

/// A sample event from the workspace's `events/` folder.
pub fn sample_event(file: &str) -> serde_json::Value {
    let path = workspace_root().join("events").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A state machine definition of the workspace (`statemachine/task.asl.json`),
/// parsed. Its `DefinitionSubstitutions` placeholders outside strings (the numbers,
/// such as `${HeartbeatSeconds}`) read as 0; those inside strings stay as written.
pub fn state_machine(path: &str) -> serde_json::Value {
    let path = workspace_root().join(path);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&bare_placeholders_as_zero(&text))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every state machine definition of the workspace, by its path: the stack's
/// (`statemachine/*.asl.json`) and the examples (`examples/pipelines/*.json`).
pub fn state_machines() -> Vec<(String, serde_json::Value)> {
    let mut paths = Vec::new();
    for folder in ["statemachine", "examples/pipelines"] {
        let dir = workspace_root().join(folder);
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") {
                paths.push(format!("{folder}/{name}"));
            }
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let definition = state_machine(&path);
            (path, definition)
        })
        .collect()
}

/// Every state of a definition, nested ones (a Map's `ItemProcessor` or `Iterator`,
/// a Parallel's `Branches`) included, by name.
pub fn all_states(definition: &serde_json::Value) -> Vec<(&str, &serde_json::Value)> {
    let mut found = Vec::new();
    for (name, state) in definition["States"].as_object().into_iter().flatten() {
        found.push((name.as_str(), state));
        let nested = ["ItemProcessor", "Iterator"]
            .iter()
            .filter_map(|key| state.get(*key))
            .chain(state["Branches"].as_array().into_iter().flatten());
        for inner in nested {
            found.extend(all_states(inner));
        }
    }
    found
}

/// The states of a definition that invoke the Lambda function `function` (by its
/// placeholder, e.g. `${TaskWatchdogFunctionArn}`), by name.
pub fn lambda_invocations<'a>(
    definition: &'a serde_json::Value,
    function: &str,
) -> Vec<(&'a str, &'a serde_json::Value)> {
    all_states(definition)
        .into_iter()
        .filter(|(_, state)| {
            state["Resource"] == "arn:aws:states:::lambda:invoke"
                && state["Parameters"]["FunctionName"] == function
        })
        .collect()
}

fn bare_placeholders_as_zero(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if !in_string
            && rest.starts_with("${")
            && let Some(end) = rest.find('}')
        {
            out.push('0');
            rest = &rest[end + 1..];
            continue;
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Peak resident set size of this process so far (VmHWM), in bytes.
pub fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("VmHWM in /proc/self/status")
}
