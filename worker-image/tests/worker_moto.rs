//! The worker process against a real moto: executions waiting on real task tokens.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use baton::payload::S3Pointer;
use baton::{Payload, Store};
use moto_harness::{BodyFault, FaultyHop, Moto, PatternReader, TokenMachine};
use serde_json::Value;
use tokio::io::AsyncReadExt;

const MIB: u64 = 1024 * 1024;
const BUCKET: &str = "data";

struct Env {
    moto: Moto,
    store: Store,
}

async fn setup() -> Env {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let store = Store::new(baton::aws::s3_client(&config));
    moto.create_bucket(BUCKET);
    Env { moto, store }
}

impl Env {
    fn spawn(&self, vars: &[(&str, &str)]) -> Child {
        self.spawn_with(Command::new(env!("CARGO_BIN_EXE_baton-worker")), vars)
    }

    /// Start `cmd` (the worker with arguments) with the environment a task gets.
    fn spawn_with(&self, mut cmd: Command, vars: &[(&str, &str)]) -> Child {
        let extra: Vec<(String, String)> = cmd
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v?.to_str()?.to_string())))
            .collect();
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_ENDPOINT_URL", &self.moto.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.spawn().expect("start baton-worker")
    }

    fn run(&self, vars: &[(&str, &str)]) -> Output {
        self.spawn(vars).wait_with_output().unwrap()
    }

    fn run_with(&self, cmd: Command, vars: &[(&str, &str)]) -> Output {
        self.spawn_with(cmd, vars).wait_with_output().unwrap()
    }

    async fn put_input(&self, key: &str, len: u64) -> S3Pointer {
        self.store
            .put(BUCKET, key, PatternReader::new(len, 11), None)
            .await
            .unwrap()
    }

    async fn exists(&self, key: &str) -> bool {
        self.store
            .client()
            .head_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .is_ok()
    }

    async fn open_uploads(&self) -> usize {
        let out = self
            .store
            .client()
            .list_multipart_uploads()
            .bucket(BUCKET)
            .send()
            .await
            .unwrap();
        out.uploads().len()
    }

    async fn read(&self, key: &str) -> Vec<u8> {
        let out = self
            .store
            .client()
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap();
        out.body.collect().await.unwrap().to_vec()
    }
}

fn logs(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The output of an execution that must succeed. SendTaskSuccess returns before
/// the execution leaves RUNNING, so wait for it to settle first.
async fn execution_output(machine: &TokenMachine, execution: &str) -> Payload {
    let (status, error) = machine.settle(execution, Duration::from_secs(10)).await;
    assert_eq!(status, "SUCCEEDED", "{error:?}");
    let d = machine
        .sfn
        .describe_execution()
        .execution_arn(execution)
        .send()
        .await
        .unwrap();
    Payload::parse(d.output().expect("execution output")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_of_256_mib_succeeds_in_bounded_memory() {
    let env = setup().await;
    let len = 256 * MIB;
    let input = env.put_input("in/big", len).await;
    let config = env.moto.sdk_config().await;
    let machine = TokenMachine::create(&env.moto, &config, "copy", None).await;
    let (execution, token) = machine.start("copy-256").await;
    let started = Instant::now();
    let output = env.run(&[
        ("TASK_TOKEN", &token),
        ("BATON_INPUT", &Payload::S3(input.clone()).to_json()),
        ("BATON_OUTPUT", "s3://data/executions/copy-256/task1/"),
        ("BATON_JOB", "copy"),
        ("BATON_TRANSFER_MEMORY", "32MiB"),
    ]);
    let seconds = started.elapsed().as_secs_f64();
    assert!(output.status.success(), "{}", describe(&output));
    let (status, _) = machine.settle(&execution, Duration::from_secs(10)).await;
    assert_eq!(status, "SUCCEEDED");
    let Payload::S3(out) = execution_output(&machine, &execution).await else {
        panic!("expected a pointer")
    };
    assert_eq!((out.size, &out.sha256), (input.size, &input.sha256));
    assert_eq!(out.key, "executions/copy-256/task1/output");
    let peak = logs(&output)
        .iter()
        .find_map(|l| l["peak_rss_bytes"].as_u64())
        .expect("peak_rss_bytes in the closing log line");
    println!(
        "copy 256 MiB: {:.1} s, {:.1} MB/s, worker peak RSS {:.1} MiB",
        seconds,
        len as f64 / 1e6 / seconds,
        peak as f64 / MIB as f64
    );
    // The worker says what its budget allows, and keeps to it: 32 MiB of buffers
    // over the process's own 25-30 MiB (a debug build: code, SDK clients, runtime)
    // and the allocator's slack.
    let chose = logs(&output)
        .iter()
        .find_map(|l| l["transfer"].as_str().map(String::from))
        .expect("the transfer memory in the log");
    assert!(
        chose.starts_with("16 MiB to read: 1 ranges of 8 MiB"),
        "{chose}"
    );
    let budget = logs(&output)
        .into_iter()
        .find(|l| l["transfer"].is_string())
        .unwrap();
    assert_eq!(budget["chosen_by"], "BATON_TRANSFER_MEMORY", "{budget}");
    // The run's metrics: one EMF line on stdout, the bytes each way and the step.
    let emf: Vec<Value> = logs(&output)
        .into_iter()
        .filter(|l| l.get("_aws").is_some())
        .collect();
    assert_eq!(emf.len(), 1, "{emf:?}");
    assert_eq!(
        (
            emf[0]["BytesRead"].as_u64(),
            emf[0]["BytesWritten"].as_u64()
        ),
        (Some(len), Some(len))
    );
    assert_eq!(emf[0]["Step"], "task1");
    assert_eq!(
        emf[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        serde_json::json!([["Step"]]),
        "no BATON_STACK: per step only"
    );
    assert!(peak < (32 + 40) * MIB, "worker peak RSS {} MiB", peak / MIB);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_sha256_fails_with_input_integrity_and_leaves_nothing() {
    let env = setup().await;
    let mut input = env.put_input("in/x", 12 * MIB).await;
    input.sha256 = Some("0".repeat(64));
    let config = env.moto.sdk_config().await;
    let machine = TokenMachine::create(&env.moto, &config, "integrity", None).await;
    let (execution, token) = machine.start("integrity").await;
    let output = env.run(&[
        ("TASK_TOKEN", &token),
        ("BATON_INPUT", &Payload::S3(input).to_json()),
        ("BATON_OUTPUT", "s3://data/executions/integrity/task1/"),
        ("BATON_JOB", "copy"),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let (status, error) = machine.settle(&execution, Duration::from_secs(10)).await;
    assert_eq!(
        (status.as_str(), error.as_deref()),
        ("FAILED", Some("Baton.InputIntegrity"))
    );
    assert!(!env.exists("executions/integrity/task1/output").await);
    assert_eq!(env.open_uploads().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_job_stops_quickly_leaves_nothing_and_leaves_the_token_to_the_watchdog() {
    let env = setup().await;
    let input = env.put_input("in/x", 20 * MIB).await;
    let config = env.moto.sdk_config().await;
    let machine = TokenMachine::create(&env.moto, &config, "sigterm", None).await;
    let (execution, token) = machine.start("sigterm").await;
    let child = env.spawn(&[
        ("TASK_TOKEN", &token),
        ("BATON_INPUT", &Payload::S3(input).to_json()),
        ("BATON_OUTPUT", "s3://data/executions/sigterm/task1/"),
        ("BATON_JOB", "sleep"),
        ("BATON_SLEEP_SECONDS", "60"),
    ]);
    // Let the upload get under way (parts of the 20 MiB output in flight).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let signalled = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    let took = signalled.elapsed();
    // Who stopped the task decides whether it runs again (an operator's StopTask must
    // not; a Spot reclaim should), and only the watchdog sees the stop code: the
    // worker sends no callback and the execution waits for the watchdog.
    let (status, _) = machine.settle(&execution, Duration::from_secs(2)).await;
    assert_eq!(status, "RUNNING", "{}", describe(&output));
    assert!(
        took < Duration::from_secs(5),
        "exited {took:?} after SIGTERM"
    );
    println!("SIGTERM → exit in {:.2} s", took.as_secs_f64());
    assert_eq!(output.status.code(), Some(143), "{}", describe(&output));
    assert!(!env.exists("executions/sigterm/task1/output").await);
    assert_eq!(
        env.open_uploads().await,
        0,
        "the multipart upload is aborted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_a_long_job_alive_and_without_them_it_times_out() {
    let env = setup().await;
    let input = Payload::Inline(Value::String("tick".into())).to_json();
    let config = env.moto.sdk_config().await;
    let machine = TokenMachine::create(&env.moto, &config, "heartbeat", Some(2)).await;

    let (alive, token) = machine.start("with-heartbeats").await;
    let output = env.run(&[
        ("TASK_TOKEN", &token),
        ("BATON_INPUT", &input),
        (
            "BATON_OUTPUT",
            "s3://data/executions/with-heartbeats/task1/",
        ),
        ("BATON_JOB", "sleep"),
        ("BATON_SLEEP_SECONDS", "5"),
        ("BATON_HEARTBEAT_SECONDS", "1"),
    ]);
    assert!(output.status.success(), "{}", describe(&output));
    let (status, _) = machine.settle(&alive, Duration::from_secs(10)).await;
    assert_eq!(status, "SUCCEEDED");
    assert_eq!(
        execution_output(&machine, &alive).await,
        Payload::Inline("tick".into())
    );

    let (dead, token) = machine.start("without-heartbeats").await;
    let output = env.run(&[
        ("TASK_TOKEN", &token),
        ("BATON_INPUT", &input),
        (
            "BATON_OUTPUT",
            "s3://data/executions/without-heartbeats/task1/",
        ),
        ("BATON_JOB", "sleep"),
        ("BATON_SLEEP_SECONDS", "5"),
        ("BATON_HEARTBEAT_SECONDS", "0"),
    ]);
    let (status, error) = machine.settle(&dead, Duration::from_secs(10)).await;
    // moto fails the execution with States.Timeout (AWS: States.HeartbeatTimeout).
    assert_eq!(status, "FAILED");
    assert!(
        matches!(
            error.as_deref(),
            Some("States.Timeout" | "States.HeartbeatTimeout")
        ),
        "{error:?}"
    );
    assert_eq!(
        output.status.code(),
        Some(3),
        "the token was closed: {}",
        describe(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_mode_writes_deterministic_keys_and_exits_by_result() {
    let env = setup().await;
    let input = env.put_input("in/x", 3 * MIB).await;
    let output = env.run(&[
        ("BATON_INPUT", &Payload::S3(input.clone()).to_json()),
        ("BATON_OUTPUT", "s3://data/executions/sync/task1/"),
        ("BATON_JOB", "copy"),
    ]);
    assert!(output.status.success(), "{}", describe(&output));
    let record = String::from_utf8(env.read("executions/sync/task1/result.json").await).unwrap();
    let Payload::S3(out) = Payload::parse(&record).unwrap() else {
        panic!("{record}")
    };
    assert_eq!(
        (out.key.as_str(), out.sha256),
        ("executions/sync/task1/output", input.sha256.clone())
    );

    // top-words on something that is not a table: the job fails, exit 1, no output.
    let failing = env.run(&[
        ("BATON_INPUT", &Payload::S3(input).to_json()),
        ("BATON_OUTPUT", "s3://data/executions/sync-fail/task1/"),
        ("BATON_JOB", "top-words"),
    ]);
    assert_eq!(failing.status.code(), Some(1), "{}", describe(&failing));
    assert!(!env.exists("executions/sync-fail/task1/output").await);
    assert!(!env.exists("executions/sync-fail/task1/result.json").await);
    let line = logs(&failing)
        .into_iter()
        .find(|l| l["error"] == "Baton.WorkerError");
    assert!(line.is_some(), "{}", describe(&failing));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_failing_on_corrupt_input_reports_the_corruption() {
    let env = setup().await;
    let mut input = env
        .store
        .put(BUCKET, "in/table", &b"not a table\n"[..], None)
        .await
        .unwrap();
    input.sha256 = Some("0".repeat(64));
    let output = env.run(&[
        ("BATON_INPUT", &Payload::S3(input).to_json()),
        ("BATON_OUTPUT", "s3://data/executions/corrupt/task2/"),
        ("BATON_JOB", "top-words"),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let named = logs(&output)
        .into_iter()
        .find_map(|l| l["error"].as_str().map(String::from));
    assert_eq!(
        named.as_deref(),
        Some("Baton.InputIntegrity"),
        "{}",
        describe(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_jobs_find_the_known_answer() {
    let env = setup().await;
    // alpha ×300, beta ×200, gamma ×100, and 5,000 words seen once, shuffled into lines.
    let mut words: Vec<String> = Vec::new();
    words.extend(std::iter::repeat_n("alpha".to_string(), 300));
    words.extend(std::iter::repeat_n("Beta".to_string(), 200));
    words.extend(std::iter::repeat_n("GAMMA".to_string(), 100));
    words.extend((0..5000).map(|i| format!("once{i}")));
    let mut text = String::new();
    for (i, w) in words.iter().enumerate() {
        text.push_str(w);
        text.push_str(if i % 13 == 0 { ".\n" } else { ", " });
    }
    let input = env
        .store
        .put(BUCKET, "in/text", text.as_bytes(), None)
        .await
        .unwrap();
    let counted = env.run(&[
        ("BATON_INPUT", &Payload::S3(input).to_json()),
        ("BATON_OUTPUT", "s3://data/executions/demo/task1/"),
        ("BATON_JOB", "word-count"),
    ]);
    assert!(counted.status.success(), "{}", describe(&counted));
    let table_payload =
        String::from_utf8(env.read("executions/demo/task1/result.json").await).unwrap();

    let config = env.moto.sdk_config().await;
    let machine = TokenMachine::create(&env.moto, &config, "demo", None).await;
    let (execution, token) = machine.start("demo").await;
    let reported = env.run(&[
        ("TASK_TOKEN", &token),
        ("BATON_INPUT", &table_payload),
        ("BATON_OUTPUT", "s3://data/executions/demo/task2/"),
        ("BATON_JOB", "top-words"),
        ("BATON_TOP_N", "3"),
    ]);
    assert!(reported.status.success(), "{}", describe(&reported));
    let Payload::Inline(report) = execution_output(&machine, &execution).await else {
        panic!("a small report travels inline")
    };
    assert_eq!(report["distinctWords"], 5003);
    assert_eq!(report["totalWords"], 5600);
    assert_eq!(
        report["top"],
        serde_json::json!([
            {"word": "alpha", "count": 300}, {"word": "beta", "count": 200}, {"word": "gamma", "count": 100}
        ])
    );
    let mut table = String::new();
    let Payload::S3(pointer) = Payload::parse(&table_payload).unwrap() else {
        panic!()
    };
    env.store
        .open(&pointer)
        .await
        .unwrap()
        .read_to_string(&mut table)
        .await
        .unwrap();
    assert!(
        table.starts_with("alpha\t300\nbeta\t200\ngamma\t100\nonce0\t1\n"),
        "{}",
        &table[..80]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_environment_names_the_variable_and_fails_the_token() {
    let env = setup().await;
    let config = env.moto.sdk_config().await;
    let machine = TokenMachine::create(&env.moto, &config, "badenv", None).await;
    let (execution, token) = machine.start("badenv").await;
    let output = env.run(&[
        ("TASK_TOKEN", &token),
        ("BATON_INPUT", r#"{"inline":1}"#),
        ("BATON_JOB", "copy"),
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("BATON_OUTPUT"),
        "{}",
        describe(&output)
    );
    let (status, error) = machine.settle(&execution, Duration::from_secs(10)).await;
    assert_eq!(
        (status.as_str(), error.as_deref()),
        ("FAILED", Some("Baton.InvalidInput"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_or_cut_input_body_is_resumed_from_the_last_byte_and_verified() {
    // The SDK retries a GetObject only until its headers arrive; a body that stalls or
    // is cut mid-way is the reader's to handle. Through a hop that breaks the first
    // GET of the input after 5 MiB, the worker resumes with a ranged GET pinned to
    // the same object, and the output is the input, byte for byte.
    let env = setup().await;
    let input = env.put_input("in/flaky", 24 * MIB).await;
    let config = env.moto.sdk_config().await;
    let machine = TokenMachine::create(&env.moto, &config, "flaky", None).await;
    for (fault, name) in [(BodyFault::Stall, "stall"), (BodyFault::Cut, "cut")] {
        let hop = FaultyHop::start(&env.moto.endpoint, "data/in/flaky", 5 * MIB, fault, 1);
        let (execution, token) = machine.start(name).await;
        let started = Instant::now();
        let output = env.run(&[
            ("AWS_ENDPOINT_URL", &hop.endpoint),
            ("TASK_TOKEN", &token),
            ("BATON_INPUT", &Payload::S3(input.clone()).to_json()),
            (
                "BATON_OUTPUT",
                &format!("s3://data/executions/{name}/task1/"),
            ),
            ("BATON_JOB", "copy"),
            ("BATON_READ_IDLE_SECONDS", "1"),
        ]);
        assert!(output.status.success(), "{name}: {}", describe(&output));
        assert_eq!(hop.faults_left(), 0, "{name}: the fault was injected");
        let resumed = logs(&output).iter().any(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("resuming"))
        });
        assert!(resumed, "{name}: {}", describe(&output));
        let Payload::S3(out) = execution_output(&machine, &execution).await else {
            panic!("expected a pointer")
        };
        assert_eq!(
            (out.size, &out.sha256),
            (input.size, &input.sha256),
            "{name}"
        );
        println!(
            "{name}: recovered in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_moves_no_byte_for_too_long_fails_with_a_clear_error() {
    // Heartbeats say the process lives, not that the work moves: a job wedged with
    // nothing read or written gives up after BATON_STALL_SECONDS and says why,
    // instead of beating until the state's timeout.
    let env = setup().await;
    let input = Payload::Inline(Value::String("tick".into())).to_json();
    let config = env.moto.sdk_config().await;
    let machine = TokenMachine::create(&env.moto, &config, "stall", Some(60)).await;
    let (execution, token) = machine.start("stalled").await;
    let started = Instant::now();
    let output = env.run(&[
        ("TASK_TOKEN", &token),
        ("BATON_INPUT", &input),
        ("BATON_OUTPUT", "s3://data/executions/stalled/task1/"),
        ("BATON_JOB", "sleep"),
        ("BATON_SLEEP_SECONDS", "60"),
        ("BATON_HEARTBEAT_SECONDS", "1"),
        ("BATON_STALL_SECONDS", "2"),
    ]);
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(took < Duration::from_secs(15), "gave up after {took:?}");
    let (status, error) = machine.settle(&execution, Duration::from_secs(10)).await;
    assert_eq!(
        (status.as_str(), error.as_deref()),
        ("FAILED", Some("Baton.WorkerError"))
    );
    // (plain moto drops SendTaskFailure's cause: read it from the worker's log)
    let said = logs(&output)
        .iter()
        .filter_map(|l| l["cause"].as_str().map(String::from))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        said.contains("BATON_STALL_SECONDS"),
        "{}",
        describe(&output)
    );
    assert!(!env.exists("executions/stalled/task1/output").await);
}

// ---------------------------------------------------------------- exec

/// Deterministic CSV of about `len` bytes: a header, then `id,name,score,note` rows.
fn csv_rows(len: u64) -> Vec<u8> {
    let mut out = b"id,name,score,note\n".to_vec();
    let mut i = 0u64;
    while (out.len() as u64) < len {
        let note = if i.is_multiple_of(7) {
            "\"a, quoted note\""
        } else {
            "plain"
        };
        out.extend_from_slice(
            format!("{i},name-{},{},{note}\n", i % 1000, i * 37 % 101).as_bytes(),
        );
        i += 1;
    }
    out
}

fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_streams_64_mib_through_a_python_program_within_its_memory_budget() {
    // Any program behind the wrapper: stdin is the verified input, stdout the output,
    // byte for byte what the program gives when run directly on the same input.
    // 64 MiB in (about 85 MiB out) through a 32 MiB transfer budget: memory does not
    // follow the data (`make bench-exec` does 1 GiB).
    let env = setup().await;
    let csv = csv_rows(64 * MIB);
    let program = repo_root().join("examples/python-program/csv_to_jsonl.py");
    let direct = {
        let mut child = Command::new("python3")
            .arg(&program)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let data = csv.clone();
        let feeder = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &data));
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap().unwrap();
        assert!(out.status.success());
        out.stdout
    };
    let input = env
        .store
        .put(BUCKET, "in/table.csv", &csv[..], Some("text/csv"))
        .await
        .unwrap();
    drop(csv);
    let config = env.moto.sdk_config().await;
    let machine = TokenMachine::create(&env.moto, &config, "exec", None).await;
    let (execution, token) = machine.start("exec-csv").await;
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_baton-worker"));
    child.args(["exec", "--", "python3", program.to_str().unwrap()]);
    let output = env.run_with(
        child,
        &[
            ("TASK_TOKEN", &token),
            ("BATON_INPUT", &Payload::S3(input).to_json()),
            ("BATON_OUTPUT", "s3://data/executions/exec-csv/task1/"),
            ("BATON_TRANSFER_MEMORY", "32MiB"),
        ],
    );
    let seconds = started.elapsed().as_secs_f64();
    assert!(output.status.success(), "{}", describe(&output));
    let Payload::S3(out) = execution_output(&machine, &execution).await else {
        panic!("expected a pointer")
    };
    assert_eq!(out.size, direct.len() as u64);
    assert_eq!(out.sha256.as_deref(), Some(sha256_hex(&direct).as_str()));
    let peak = logs(&output)
        .iter()
        .find_map(|l| l["peak_rss_bytes"].as_u64())
        .expect("peak_rss_bytes in the closing log line");
    println!(
        "exec python csv→jsonl 64 MiB in: {seconds:.1} s, wrapper peak RSS {:.1} MiB",
        peak as f64 / MIB as f64
    );
    // The 32 MiB of buffers over the process's own 25-30 MiB (a debug build) and the
    // allocator's slack.
    assert!(
        peak < (32 + 40) * MIB,
        "wrapper peak RSS {} MiB",
        peak / MIB
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_file_modes_failures_signals_and_the_token() {
    let env = setup().await;
    let input = env.put_input("in/small", 3 * MIB).await;
    let config = env.moto.sdk_config().await;
    let machine = TokenMachine::create(&env.moto, &config, "exec-cases", None).await;
    let exec = |command: &[&str]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_baton-worker"));
        child.arg("exec").arg("--").args(command);
        child
    };
    let causes = |output: &Output| -> String {
        // plain moto drops SendTaskFailure's cause: read it from the worker's log
        logs(output)
            .iter()
            .filter_map(|l| l["cause"].as_str().map(String::from))
            .collect::<Vec<_>>()
            .join("\n")
    };

    // File mode both ways: the program gets paths, seeks if it likes.
    let (execution, token) = machine.start("files").await;
    let output = env.run_with(
        exec(&[
            "sh",
            "-c",
            "cp \"$BATON_INPUT_PATH\" \"$BATON_OUTPUT_PATH\"",
        ]),
        &[
            ("TASK_TOKEN", &token),
            ("BATON_INPUT", &Payload::S3(input.clone()).to_json()),
            ("BATON_OUTPUT", "s3://data/executions/files/task1/"),
            ("BATON_INPUT_MODE", "file"),
            ("BATON_OUTPUT_MODE", "file"),
        ],
    );
    assert!(output.status.success(), "{}", describe(&output));
    let Payload::S3(out) = execution_output(&machine, &execution).await else {
        panic!("expected a pointer")
    };
    assert_eq!((out.size, &out.sha256), (input.size, &input.sha256));

    // Exit 7: Baton.WorkerError, with the code and the last stderr line in the cause.
    let (execution, token) = machine.start("exit-7").await;
    let output = env.run_with(
        exec(&[
            "sh",
            "-c",
            "cat > /dev/null; echo 'reading rows' >&2; echo 'row 12: bad date' >&2; exit 7",
        ]),
        &[
            ("TASK_TOKEN", &token),
            ("BATON_INPUT", &Payload::S3(input.clone()).to_json()),
            ("BATON_OUTPUT", "s3://data/executions/exit-7/task1/"),
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let (status, error) = machine.settle(&execution, Duration::from_secs(10)).await;
    assert_eq!(
        (status.as_str(), error.as_deref()),
        ("FAILED", Some("Baton.WorkerError"))
    );
    let cause = causes(&output);
    assert!(
        cause.contains("exited with code 7") && cause.contains("row 12: bad date"),
        "{cause}"
    );
    assert!(!env.exists("executions/exit-7/task1/output").await);
    assert_eq!(env.open_uploads().await, 0);
    assert!(
        logs(&output).iter().any(|l| l["line"] == "reading rows"),
        "stderr reaches the task's log line by line: {}",
        describe(&output)
    );

    // Killed by a signal.
    let (execution, token) = machine.start("killed").await;
    let output = env.run_with(
        exec(&["sh", "-c", "kill -KILL $$"]),
        &[
            ("TASK_TOKEN", &token),
            ("BATON_INPUT", "{\"inline\":\"x\"}"),
            ("BATON_OUTPUT", "s3://data/executions/killed/task1/"),
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let (_, error) = machine.settle(&execution, Duration::from_secs(10)).await;
    assert_eq!(error.as_deref(), Some("Baton.WorkerError"));
    assert!(
        causes(&output).contains("signal 9"),
        "{}",
        describe(&output)
    );

    // The child never sees the token; BATON_COMMAND works as well as `exec --`.
    let (execution, token) = machine.start("token").await;
    let output = env.run(&[
        ("TASK_TOKEN", &token),
        ("BATON_INPUT", "{\"inline\":\"x\"}"),
        ("BATON_OUTPUT", "s3://data/executions/token/task1/"),
        (
            "BATON_COMMAND",
            r#"["sh", "-c", "echo token=${TASK_TOKEN:-none}"]"#,
        ),
    ]);
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(
        execution_output(&machine, &execution).await,
        Payload::Inline(Value::String("token=none\n".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_forwards_sigterm_and_kills_a_child_that_ignores_it_after_the_grace_period() {
    let env = setup().await;
    let config = env.moto.sdk_config().await;
    let machine = TokenMachine::create(&env.moto, &config, "exec-term", None).await;
    let dir = tempfile_dir();
    for (name, script, limit) in [
        // Ends on SIGTERM at once.
        (
            "polite",
            "echo $$ > \"$PIDS/polite\"; sleep 60 & wait",
            Duration::from_secs(3),
        ),
        // Ignores SIGTERM: killed after BATON_STOP_GRACE_SECONDS (2 s).
        (
            "stubborn",
            "trap '' TERM; echo $$ > \"$PIDS/stubborn\"; while true; do sleep 0.2; done",
            Duration::from_secs(5),
        ),
    ] {
        let (_, token) = machine.start(name).await;
        let mut command = Command::new(env!("CARGO_BIN_EXE_baton-worker"));
        command
            .args(["exec", "--", "sh", "-c", script])
            .env("PIDS", &dir);
        let child = env.spawn_with(
            command,
            &[
                ("TASK_TOKEN", &token),
                ("BATON_INPUT", "{\"inline\":\"x\"}"),
                (
                    "BATON_OUTPUT",
                    &format!("s3://data/executions/{name}/task1/"),
                ),
                ("BATON_STOP_GRACE_SECONDS", "2"),
            ],
        );
        let pid_file = dir.join(name);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pid_file.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let signalled = Instant::now();
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let output = child.wait_with_output().unwrap();
        let took = signalled.elapsed();
        assert_eq!(
            output.status.code(),
            Some(143),
            "{name}: {}",
            describe(&output)
        );
        assert!(took < limit, "{name}: the wrapper took {took:?}");
        // SAFETY: kill(pid, 0) only asks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        assert!(!alive, "{name}: the child {pid} outlived the wrapper");
        println!(
            "{name}: wrapper ended {:.1} s after SIGTERM",
            took.as_secs_f64()
        );
    }
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("baton-exec-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
