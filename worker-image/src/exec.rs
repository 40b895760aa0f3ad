//! `baton-worker exec -- <command> [args…]`: any program as a Baton job.
//!
//! The program runs as a child in its own process group. By default the verified
//! input streams to its stdin and its stdout streams to the output (bounded memory:
//! the child starts at once, nothing is held whole); with `BATON_INPUT_MODE=file` /
//! `BATON_OUTPUT_MODE=file` it gets paths in `BATON_INPUT_PATH` / `BATON_OUTPUT_PATH`
//! instead. Its stderr goes to the task's log line by line, and the last lines go
//! into the failure's cause. The child never sees `TASK_TOKEN`. On a stop the group
//! gets SIGTERM, then SIGKILL after `BATON_STOP_GRACE_SECONDS`.

use std::collections::VecDeque;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tracing::{info, warn};

use crate::jobs::{DynJob, JobIo, job_error};
use crate::settings::{ConfigError, config_error, setting};

/// Default time a stopped child gets before SIGKILL: below ECS's default
/// `stopTimeout` (30 s), so the wrapper still reports before ECS kills it.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(20);
/// Lines of the child's stderr kept for the cause.
const STDERR_TAIL_LINES: usize = 20;
/// Characters kept of each of those lines.
const STDERR_LINE_CHARS: usize = 300;
/// Copy buffer between the streams and the child.
const BUFFER: usize = 256 * 1024;

/// How the child gets its input or gives its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// stdin / stdout.
    Stream,
    /// A file whose path is in `BATON_INPUT_PATH` / `BATON_OUTPUT_PATH`.
    File,
}

#[derive(Debug, Clone)]
pub struct Exec {
    pub command: Vec<String>,
    pub input_mode: Mode,
    pub output_mode: Mode,
    pub stop_grace: Duration,
    /// Where file-mode inputs and outputs live (`BATON_SCRATCH_DIR`, else `TMPDIR`,
    /// else `/tmp`): a writable volume when the root filesystem is read-only.
    pub scratch: PathBuf,
    pub content_type: &'static str,
}

fn mode(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
) -> Result<Mode, ConfigError> {
    match get(variable).as_deref() {
        None | Some("") | Some("stream") => Ok(Mode::Stream),
        Some("file") => Ok(Mode::File),
        Some(other) => Err(config_error(
            variable,
            format!("expected stream or file, got {other:?}"),
        )),
    }
}

/// `BATON_COMMAND`: the command as a JSON array of strings.
pub fn command_from_env(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<Vec<String>>, ConfigError> {
    let Some(text) = get("BATON_COMMAND").filter(|t| !t.trim().is_empty()) else {
        return Ok(None);
    };
    let command: Vec<String> = serde_json::from_str(&text).map_err(|e| {
        config_error(
            "BATON_COMMAND",
            format!("expected a JSON array of strings, like [\"python3\", \"job.py\"]: {e}"),
        )
    })?;
    if command.is_empty() {
        return Err(config_error("BATON_COMMAND", "the command is empty"));
    }
    Ok(Some(command))
}

impl Exec {
    pub fn new(
        command: Vec<String>,
        get: &impl Fn(&str) -> Option<String>,
    ) -> Result<Exec, ConfigError> {
        if command.is_empty() {
            return Err(config_error(
                "BATON_COMMAND",
                "no command: give one after `exec --`, in the container's command, or in BATON_COMMAND",
            ));
        }
        let grace = setting(
            &|n: &str| get(n),
            "BATON_STOP_GRACE_SECONDS",
            DEFAULT_STOP_GRACE.as_secs(),
            "whole seconds",
            |_| true,
        )?;
        let scratch = get("BATON_SCRATCH_DIR")
            .or_else(|| get("TMPDIR"))
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "/tmp".into());
        Ok(Exec {
            command,
            input_mode: mode(get, "BATON_INPUT_MODE")?,
            output_mode: mode(get, "BATON_OUTPUT_MODE")?,
            stop_grace: Duration::from_secs(grace),
            scratch: PathBuf::from(scratch),
            content_type: "application/octet-stream",
        })
    }

    async fn execute(&self, io: JobIo<'_>) -> io::Result<()> {
        let JobIo {
            input,
            output,
            mut stopping,
            ..
        } = io;
        let scratch = Scratch::create(&self.scratch)?;
        let mut command = Command::new(&self.command[0]);
        command
            .args(&self.command[1..])
            .env_remove(baton::ecs_event::TOKEN_VARIABLE)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if self.input_mode == Mode::File {
            // Downloaded and verified whole before the child starts: a program that
            // seeks never sees unverified bytes.
            let path = scratch.path("input");
            let mut file = tokio::fs::File::create(&path).await?;
            tokio::io::copy(
                &mut BufReader::with_capacity(BUFFER, &mut *input),
                &mut file,
            )
            .await?;
            file.flush().await?;
            command.env("BATON_INPUT_PATH", &path);
        } else {
            command.stdin(Stdio::piped());
        }
        let output_path = scratch.path("output");
        if self.output_mode == Mode::File {
            command.env("BATON_OUTPUT_PATH", &output_path);
        }
        let mut child = command
            .spawn()
            .map_err(|e| job_error(format!("could not start {:?}: {e}", self.command[0])))?;
        let group = Group(child.id().map(|pid| pid as i32));
        info!(command = ?self.command, pid = group.0, "child started");

        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let feed = async {
            let Some(mut stdin) = stdin else {
                return Ok(());
            };
            let fed = tokio::io::copy(
                &mut BufReader::with_capacity(BUFFER, &mut *input),
                &mut stdin,
            )
            .await;
            drop(stdin); // end of input for the child
            match fed {
                // The child stopped reading: read the rest to verify it, so corrupt
                // input is reported as such.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                    tokio::io::copy(&mut *input, &mut tokio::io::sink())
                        .await
                        .map(|_| ())
                }
                other => other.map(|_| ()),
            }
        };
        let stdout_mode = self.output_mode;
        let collect = async {
            match stdout_mode {
                Mode::Stream => {
                    tokio::io::copy(&mut BufReader::with_capacity(BUFFER, stdout), &mut *output)
                        .await?;
                    Ok(())
                }
                Mode::File => {
                    log_lines(stdout, "stdout", None).await;
                    Ok::<(), io::Error>(())
                }
            }
        };
        let mut tail = VecDeque::new();
        let errors = log_lines(stderr, "stderr", Some(&mut tail));
        let wait = wait_or_stop(&mut child, &group, &mut stopping, self.stop_grace);
        let (fed, collected, (), status) = tokio::join!(feed, collect, errors, wait);
        let status = status?;
        // An input that failed verification wins over whatever the child did.
        if let Err(e) = fed
            && e.kind() != io::ErrorKind::BrokenPipe
        {
            return Err(e);
        }
        if !status.success() {
            return Err(job_error(failure(&self.command, status, &tail)));
        }
        collected?;
        if self.output_mode == Mode::File {
            let mut file = tokio::fs::File::open(&output_path).await.map_err(|e| {
                job_error(format!(
                    "the command exited 0 but wrote no file at BATON_OUTPUT_PATH ({}): {e}",
                    output_path.display()
                ))
            })?;
            tokio::io::copy(&mut file, &mut *output).await?;
        }
        output.flush().await
    }
}

impl DynJob for Exec {
    fn content_type(&self) -> &'static str {
        self.content_type
    }

    fn run<'a>(&'a self, io: JobIo<'a>) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(self.execute(io))
    }

    fn stop_grace(&self) -> Option<Duration> {
        Some(self.stop_grace)
    }
}

/// Wait for the child; on a stop, SIGTERM its group, then SIGKILL after `grace`.
async fn wait_or_stop(
    child: &mut Child,
    group: &Group,
    stopping: &mut tokio::sync::watch::Receiver<bool>,
    grace: Duration,
) -> io::Result<ExitStatus> {
    tokio::select! {
        status = child.wait() => return status,
        _ = stopping.wait_for(|stop| *stop) => {}
    }
    warn!(
        pid = group.0,
        grace_seconds = grace.as_secs(),
        "stopping: SIGTERM to the child"
    );
    group.signal(libc::SIGTERM);
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            warn!(
                pid = group.0,
                "the child outlived its grace period: SIGKILL"
            );
            group.signal(libc::SIGKILL);
            child.wait().await
        }
    }
}

/// Each line to the task's log as it comes; the last ones kept when asked.
async fn log_lines(
    stream: impl AsyncRead + Unpin,
    which: &'static str,
    mut tail: Option<&mut VecDeque<String>>,
) {
    let mut lines = BufReader::new(stream).lines();
    loop {
        match lines.next_line().await {
            Ok(Some(line)) => {
                info!(stream = which, line = %line, "child");
                if let Some(tail) = tail.as_deref_mut() {
                    if tail.len() == STDERR_TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(
                        baton::limits::truncate_chars(&line, STDERR_LINE_CHARS).to_string(),
                    );
                }
            }
            Ok(None) => return,
            Err(e) => {
                // Not UTF-8, or the pipe broke: the rest is not logged as lines.
                warn!(stream = which, error = %e, "child output not readable as lines");
                let _ = tokio::io::copy(lines.get_mut(), &mut tokio::io::sink()).await;
                return;
            }
        }
    }
}

/// The failure's message: exit code or signal, and the last lines of stderr.
fn failure(command: &[String], status: ExitStatus, tail: &VecDeque<String>) -> String {
    let how = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "ended abnormally".into(),
    };
    let mut message = format!("the command {:?} {how}", command[0]);
    if !tail.is_empty() {
        message.push_str("; last lines of its stderr:\n");
        message.push_str(&Vec::from(tail.clone()).join("\n"));
    }
    message
}

/// The child's process group, signalled as a whole (a shell pipeline included).
struct Group(Option<i32>);

impl Group {
    fn signal(&self, signal: i32) {
        if let Some(pgid) = self.0 {
            // SAFETY: kill(2) on a process group this worker created.
            unsafe {
                libc::kill(-pgid, signal);
            }
        }
    }
}

impl Drop for Group {
    /// Whatever ended the job (an error, a drop), nothing it started lives on.
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
    }
}

/// A private folder for file-mode data, removed with its contents at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn create(base: &std::path::Path) -> io::Result<Scratch> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = base.join(format!("baton-exec-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(command: &[&str], vars: &[(&str, &str)]) -> Exec {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let get = move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        Exec::new(command.iter().map(|s| s.to_string()).collect(), &get).unwrap()
    }

    async fn run(job: &Exec, input: &[u8]) -> io::Result<Vec<u8>> {
        crate::jobs::testing::run_job(job, input).await
    }

    #[tokio::test]
    async fn stdin_to_stdout_and_files_both_ways() {
        let upper = exec(&["tr", "a-z", "A-Z"], &[]);
        assert_eq!(run(&upper, b"hello").await.unwrap(), b"HELLO");
        let files = exec(
            &[
                "sh",
                "-c",
                "tr a-z A-Z < \"$BATON_INPUT_PATH\" > \"$BATON_OUTPUT_PATH\"",
            ],
            &[("BATON_INPUT_MODE", "file"), ("BATON_OUTPUT_MODE", "file")],
        );
        assert_eq!(run(&files, b"file mode").await.unwrap(), b"FILE MODE");
    }

    #[tokio::test]
    async fn a_failing_command_names_its_exit_code_and_last_stderr_line() {
        let failing = exec(
            &[
                "sh",
                "-c",
                "echo first >&2; echo 'the last words' >&2; exit 7",
            ],
            &[],
        );
        let err = run(&failing, b"").await.unwrap_err().to_string();
        assert!(err.contains("exited with code 7"), "{err}");
        assert!(err.contains("the last words"), "{err}");
        let killed = exec(&["sh", "-c", "kill -9 $$"], &[]);
        let err = run(&killed, b"").await.unwrap_err().to_string();
        assert!(err.contains("signal 9"), "{err}");
    }

    #[tokio::test]
    async fn the_child_never_sees_the_token() {
        // SAFETY: set before any child starts; the test reads it back through `env`.
        unsafe { std::env::set_var("TASK_TOKEN", "AQCEsecret") };
        let env = exec(&["sh", "-c", "echo \"token=${TASK_TOKEN:-none}\""], &[]);
        assert_eq!(run(&env, b"").await.unwrap(), b"token=none\n");
    }

    #[test]
    fn settings_name_their_variable() {
        let get = |n: &str| (n == "BATON_INPUT_MODE").then(|| "disk".to_string());
        let err = Exec::new(vec!["true".into()], &get).unwrap_err();
        assert_eq!(err.variable, "BATON_INPUT_MODE");
        let get = |n: &str| (n == "BATON_COMMAND").then(|| "python3 job.py".to_string());
        assert_eq!(
            command_from_env(&get).unwrap_err().variable,
            "BATON_COMMAND"
        );
        let get = |n: &str| (n == "BATON_COMMAND").then(|| r#"["python3","job.py"]"#.to_string());
        assert_eq!(
            command_from_env(&get).unwrap().unwrap(),
            ["python3", "job.py"]
        );
    }
}
