//! Task-token callbacks to Step Functions: success, failure, heartbeat.
//!
//! A closed token (`TaskTimedOut`, `TaskDoesNotExist`) is an outcome, not an error:
//! the execution has moved on. `InvalidToken` is different: Step Functions could not
//! read the token at all (malformed or cut), so nothing was delivered and nothing
//! ever will be; it is its own outcome, logged as an error by the callers.
//! Throttling and 5xx are retried by the SDK's standard retry strategy with
//! exponential backoff.

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
/// backoff and jitter, for about a minute in all, before the caller gives up.
pub fn callback_retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(8)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(10))
}

/// Sends callbacks for task tokens.
#[derive(Clone, Debug)]
pub struct CallbackClient {
    sfn: aws_sdk_sfn::Client,
}

impl CallbackClient {
    /// A client with Baton's callback retry policy and [`crate::aws::api_timeouts`]
    /// on top of `config`.
    pub fn new(config: &SdkConfig) -> CallbackClient {
        let sfn = aws_sdk_sfn::config::Builder::from(config)
            .retry_config(callback_retry_config())
            .timeout_config(crate::aws::api_timeouts())
            .build();
        CallbackClient {
            sfn: aws_sdk_sfn::Client::from_conf(sfn),
        }
    }

    /// Use an existing client as is (its retry configuration included).
    pub fn from_client(sfn: aws_sdk_sfn::Client) -> CallbackClient {
        CallbackClient { sfn }
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
