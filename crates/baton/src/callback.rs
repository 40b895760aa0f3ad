//! Task-token callbacks to Step Functions: success, failure, heartbeat.
//!
//! A closed token (`TaskTimedOut`, `TaskDoesNotExist`) is an outcome, not an error:
//! the execution has moved on. `InvalidToken` is different: Step Functions could not
//! read the token at all (malformed or cut), so nothing was delivered and nothing
//! ever will be; it is its own outcome, logged as an error by the callers.
//! Throttling and 5xx are retried by the SDK's standard retry strategy with
//! exponential backoff, within a budget for the whole call ([`CALLBACK_BUDGET`]).

use std::fmt;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_sdk_sfn::error::SdkError;
use sha2::{Digest, Sha256};

use crate::error::{Error, display_chain};
use crate::limits::{SFN_CAUSE_MAX_CHARS, SFN_ERROR_MAX_CHARS, truncate_aws};

/// A Step Functions task token. `Debug` and `Display` show a short hash, never the
/// token: tokens are bearer credentials for the execution.
#[derive(Clone, PartialEq, Eq)]
pub struct TaskToken(String);

impl TaskToken {
    /// A token as Step Functions handed it. Only an empty token is refused: the
    /// length limit is the service's to enforce (it was 1,024 once and is 2,048 now),
    /// and a client that guesses wrong leaves the execution hanging.
    pub fn new(token: impl Into<String>) -> Result<TaskToken, Error> {
        let token = token.into();
        if token.is_empty() {
            return Err(Error::InvalidInput("the task token is empty".into()));
        }
        Ok(TaskToken(token))
    }

    /// The token itself, for the API call only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// First 12 hex digits of the token's sha256: enough to correlate log lines.
    pub fn short_hash(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        hex::encode(&digest[..6])
    }
}

impl fmt::Debug for TaskToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskToken(sha256:{})", self.short_hash())
    }
}

impl fmt::Display for TaskToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "token#{}", self.short_hash())
    }
}

/// What became of a callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// Step Functions accepted it.
    Delivered,
    /// The token was already closed (the task called back, timed out, or the
    /// execution ended); the code says which error Step Functions gave.
    AlreadyClosed { code: String },
    /// Step Functions rejected the token as malformed (`InvalidToken`): not a token
    /// it issued, or one cut or altered on the way. Retrying cannot help.
    Rejected { code: String },
}

/// Retry settings for callbacks: throttling and 5xx are retried with exponential
/// backoff and jitter (up to 8 attempts, at most about 23 s of backoff in all), and
/// [`CALLBACK_BUDGET`] bounds the whole call.
pub fn callback_retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(8)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(10))
}

/// Longest one callback may take, every attempt and backoff included (the SDK's
/// operation timeout). Without it, 8 attempts of up to 15 s each
/// ([`crate::aws::api_timeouts`]) plus backoff could run for over three minutes:
/// - the watchdog Lambda (template.yaml `Timeout: 60`) would be killed mid-retry,
///   and the SQS record it was handling would not be reported as a batch item
///   failure by the function: at 40 s the callback ends as an error the function
///   returns in time, and SQS delivers the record again;
/// - the worker sends no heartbeat while its final callback is retried, and
///   `HeartbeatSeconds` may be as low as 120 s (a beat every 20 s before it).
pub const CALLBACK_BUDGET: Duration = Duration::from_secs(40);

/// Sends callbacks for task tokens.
#[derive(Clone, Debug)]
pub struct CallbackClient {
    sfn: aws_sdk_sfn::Client,
}

impl CallbackClient {
    /// A client with Baton's callback retry policy, [`crate::aws::api_timeouts`] for
    /// each attempt and [`CALLBACK_BUDGET`] for each call, on top of `config`.
    pub fn new(config: &SdkConfig) -> CallbackClient {
        let timeouts = crate::aws::api_timeouts()
            .to_builder()
            .operation_timeout(CALLBACK_BUDGET)
            .build();
        let sfn = aws_sdk_sfn::config::Builder::from(config)
            .retry_config(callback_retry_config())
            .timeout_config(timeouts)
            .build();
        CallbackClient {
            sfn: aws_sdk_sfn::Client::from_conf(sfn),
        }
    }

    /// Use an existing client as is (its retry and timeout configuration included).
    pub fn from_client(sfn: aws_sdk_sfn::Client) -> CallbackClient {
        CallbackClient { sfn }
    }

    /// The same client, each call bounded by `budget` in all (retries and backoff
    /// included) instead; its other timeouts kept. A caller with a deadline of its
    /// own (a Lambda's remaining time) passes what is left of it, less a margin.
    pub fn with_budget(self, budget: Duration) -> CallbackClient {
        let config = self.sfn.config();
        let timeouts = config
            .timeout_config()
            .map(|t| t.to_builder())
            .unwrap_or_default()
            .operation_timeout(budget)
            .build();
        let sfn = config.to_builder().timeout_config(timeouts).build();
        CallbackClient {
            sfn: aws_sdk_sfn::Client::from_conf(sfn),
        }
    }

    /// The Step Functions client underneath (for the calls that are not callbacks).
    pub fn sfn(&self) -> &aws_sdk_sfn::Client {
        &self.sfn
    }

    /// How long one call may take in all, if bounded.
    pub fn budget(&self) -> Option<Duration> {
        self.sfn
            .config()
            .timeout_config()
            .and_then(|t| t.operation_timeout())
    }

    pub async fn success(&self, token: &TaskToken, output: &str) -> Result<CallbackOutcome, Error> {
        let result = self
            .sfn
            .send_task_success()
            .task_token(token.expose())
            .output(output)
            .send()
            .await;
        classify(
            result,
            "SendTaskSuccess",
            |e| e.is_task_timed_out() || e.is_task_does_not_exist(),
            |e| e.is_invalid_token(),
        )
    }

    /// Fail the task. `error` is cut to 256 and `cause` to 32,768 UTF-16 units
    /// ([`crate::limits::aws_len`]), at character boundaries, so the failure is never lost to a validation error.
    pub async fn failure(
        &self,
        token: &TaskToken,
        error: &str,
        cause: &str,
    ) -> Result<CallbackOutcome, Error> {
        let result = self
            .sfn
            .send_task_failure()
            .task_token(token.expose())
            .error(truncate_aws(error, SFN_ERROR_MAX_CHARS))
            .cause(truncate_aws(cause, SFN_CAUSE_MAX_CHARS))
            .send()
            .await;
        classify(
            result,
            "SendTaskFailure",
            |e| e.is_task_timed_out() || e.is_task_does_not_exist(),
            |e| e.is_invalid_token(),
        )
    }

    pub async fn heartbeat(&self, token: &TaskToken) -> Result<CallbackOutcome, Error> {
        let result = self
            .sfn
            .send_task_heartbeat()
            .task_token(token.expose())
            .send()
            .await;
        classify(
            result,
            "SendTaskHeartbeat",
            |e| e.is_task_timed_out() || e.is_task_does_not_exist(),
            |e| e.is_invalid_token(),
        )
    }
}

fn classify<O, E, R>(
    result: Result<O, SdkError<E, R>>,
    operation: &'static str,
    is_closed: impl Fn(&E) -> bool,
    is_rejected: impl Fn(&E) -> bool,
) -> Result<CallbackOutcome, Error>
where
    E: std::error::Error + aws_sdk_sfn::error::ProvideErrorMetadata + 'static,
    R: fmt::Debug,
{
    match result {
        Ok(_) => Ok(CallbackOutcome::Delivered),
        Err(err) => match err.as_service_error() {
            Some(service) if is_closed(service) => Ok(CallbackOutcome::AlreadyClosed {
                code: service.code().unwrap_or("unknown").to_string(),
            }),
            Some(service) if is_rejected(service) => Ok(CallbackOutcome::Rejected {
                code: service.code().unwrap_or("unknown").to_string(),
            }),
            _ => Err(Error::Service {
                service: "states",
                operation,
                message: display_chain(&err),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without timeouts a callback whose answer stalls waits forever, and a stalled
    /// heartbeat outlives `HeartbeatSeconds` (`aws::api_timeouts`).
    #[test]
    fn callbacks_give_up_on_a_silent_answer_and_retry() {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let client = CallbackClient::new(&config);
        let timeouts = client.sfn.config().timeout_config().expect("timeouts set");
        assert_eq!(timeouts.read_timeout(), Some(Duration::from_secs(10)));
        assert_eq!(
            timeouts.operation_attempt_timeout(),
            Some(Duration::from_secs(15))
        );
        assert!(timeouts.connect_timeout().is_some());
        assert_eq!(client.budget(), Some(CALLBACK_BUDGET));
        // A budget of the caller's own replaces the total only.
        let shorter = client.with_budget(Duration::from_secs(7));
        let timeouts = shorter.sfn.config().timeout_config().expect("timeouts set");
        assert_eq!(timeouts.operation_timeout(), Some(Duration::from_secs(7)));
        assert_eq!(timeouts.read_timeout(), Some(Duration::from_secs(10)));
        assert_eq!(
            timeouts.operation_attempt_timeout(),
            Some(Duration::from_secs(15))
        );
        let retry = shorter.sfn.config().retry_config().expect("retry set");
        assert_eq!(retry.max_attempts(), 8);
    }

    /// Every Lambda of the stack that sends callbacks (the watchdog) must outlive a
    /// callback that gives up, with time left to answer: SQS retries a record only
    /// if the function returns it as a batch item failure.
    #[test]
    fn the_callback_budget_fits_inside_the_functions_timeout() {
        let template = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml"),
        )
        .expect("template.yaml");
        let timeouts: Vec<u64> = template
            .lines()
            .filter_map(|line| line.trim().strip_prefix("Timeout: "))
            .map(|v| v.trim().parse().expect("a number of seconds"))
            .collect();
        assert!(!timeouts.is_empty(), "no function Timeout in template.yaml");
        for timeout in timeouts {
            assert!(
                CALLBACK_BUDGET + Duration::from_secs(15) <= Duration::from_secs(timeout),
                "a callback may take {CALLBACK_BUDGET:?}: too long for a function of {timeout} s"
            );
        }
    }

    /// A Step Functions endpoint that takes the request and never answers: the
    /// callback gives up when its budget is spent, not an attempt (10 s to the
    /// first byte) or eight later.
    #[tokio::test]
    async fn a_callback_to_a_silent_endpoint_gives_up_within_its_budget() {
        // Bound and never accepted: the kernel completes the connection, nobody reads.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_sdk_sfn::config::Region::new("us-east-1"))
            .endpoint_url(format!("http://{}", silent.local_addr().unwrap()))
            .credentials_provider(aws_sdk_sfn::config::SharedCredentialsProvider::new(
                aws_sdk_sfn::config::Credentials::new("AKIDTEST", "secret", None, None, "test"),
            ))
            .build();
        let budget = Duration::from_millis(1500);
        let client = CallbackClient::new(&config).with_budget(budget);
        let token = TaskToken::new("AQCEAAAAKgAAAAMAAAAAsilent").unwrap();
        let started = std::time::Instant::now();
        let beat = client.heartbeat(&token).await;
        let took = started.elapsed();
        let err = beat.expect_err("nobody answered");
        assert!(err.to_string().to_lowercase().contains("timeout"), "{err}");
        assert!(
            took >= budget && took < budget + Duration::from_secs(3),
            "gave up after {took:?}, budget {budget:?}"
        );
    }
    use crate::limits::TASK_TOKEN_MAX_CHARS;

    #[test]
    fn token_is_never_printed() {
        let secret = "AQCEAAAAKgAAAAMAAAAAsecretsecretsecret";
        let token = TaskToken::new(secret).unwrap();
        let shown = [
            format!("{token}"),
            format!("{token:?}"),
            format!("{:#?}", token),
        ];
        for s in shown {
            assert!(!s.contains("secret"), "{s}");
            assert!(!s.contains("AQCE"), "{s}");
            assert!(s.contains(&token.short_hash()));
        }
        assert_eq!(token.short_hash().len(), 12);
    }

    #[test]
    fn tokens_of_any_length_are_accepted_and_only_empty_ones_refused() {
        assert!(TaskToken::new("").is_err());
        // Real tokens run to 2,048 characters; a longer one is the service's to refuse.
        for len in [
            1,
            1_024,
            1_025,
            TASK_TOKEN_MAX_CHARS,
            TASK_TOKEN_MAX_CHARS * 4,
        ] {
            assert!(TaskToken::new("x".repeat(len)).is_ok(), "{len}");
        }
    }
}
