//! The `Baton.*` error names (a contract) and the library's error type.

/// Error names as Step Functions sees them. These strings are a contract: state
/// machines retry and catch on them, and checks outside the repository match them.
pub mod names {
    pub const TASK_FAILED_TO_START: &str = "Baton.TaskFailedToStart";
    pub const OUT_OF_MEMORY: &str = "Baton.OutOfMemory";
    pub const CONTAINER_EXITED: &str = "Baton.ContainerExited";
    pub const NO_CALLBACK: &str = "Baton.NoCallback";
    pub const TASK_STOPPED: &str = "Baton.TaskStopped";
    pub const INTERRUPTED: &str = "Baton.Interrupted";
    pub const WORKER_ERROR: &str = "Baton.WorkerError";
    pub const INPUT_INTEGRITY: &str = "Baton.InputIntegrity";
    pub const INVALID_INPUT: &str = "Baton.InvalidInput";
    /// A callback task state had no heartbeat for `HeartbeatSeconds` (a frozen,
    /// deadlocked or wedged worker); its task was stopped.
    pub const UNRESPONSIVE: &str = "Baton.Unresponsive";
    /// A callback task state ran longer than its `TimeoutSeconds`; its task was stopped.
    pub const TIMED_OUT: &str = "Baton.TimedOut";
    /// A fan-in found more failed items than its `toleratedFailurePercentage`; the
    /// cause lists each failed item's error.
    pub const ITEMS_FAILED: &str = "Baton.ItemsFailed";
    /// Not in the design's table: S3 or Step Functions could not be reached or
    /// refused the call (permissions, throttling after retries). Retryable.
    pub const SERVICE_UNAVAILABLE: &str = "Baton.ServiceUnavailable";
    /// Raised by a pipeline (not by a task): a step's execution failed with an error a
    /// Fail state may not raise (a Step Functions `States.*` error) or with none. A
    /// step's execution that was stopped is `TASK_STOPPED`, one that timed out
    /// `TIMED_OUT`; the cause names the step's execution, whose description holds its
    /// own error and cause.
    pub const STEP_FAILED: &str = "Baton.StepFailed";
}

/// What can go wrong in the library. Each variant carries a stable `Baton.*` name.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A pointer's target is missing, changed, or does not match its size or sha256.
    #[error("input integrity: {0}")]
    InputIntegrity(String),
    /// Malformed input: a Payload, an event, a URI, a setting.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The job's output does not fit one S3 object as Baton writes it.
    #[error("output too large: {0}")]
    OutputTooLarge(String),
    /// More items of a fan-out failed than the policy tolerates (a JSON report).
    #[error("{0}")]
    ItemsFailed(String),
    /// An AWS call failed for a reason that is not the input's fault.
    #[error("{service} {operation} failed: {message}")]
    Service {
        service: &'static str,
        operation: &'static str,
        message: String,
    },
}

impl Error {
    /// The stable `Baton.*` name of this error.
    pub fn name(&self) -> &'static str {
        match self {
            Error::InputIntegrity(_) => names::INPUT_INTEGRITY,
            Error::InvalidInput(_) => names::INVALID_INPUT,
            Error::OutputTooLarge(_) => names::WORKER_ERROR,
            Error::ItemsFailed(_) => names::ITEMS_FAILED,
            Error::Service { .. } => names::SERVICE_UNAVAILABLE,
        }
    }

    pub(crate) fn service(
        service: &'static str,
        operation: &'static str,
        err: impl std::error::Error,
    ) -> Self {
        Error::Service {
            service,
            operation,
            message: display_chain(&err),
        }
    }
}

#[cfg(feature = "lambda")]
impl From<Error> for lambda_runtime::Diagnostic {
    /// The `Baton.*` name becomes the Lambda error type, which Step Functions
    /// reports as the state's error: Retry and Catch match on it.
    fn from(err: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: err.name().to_string(),
            error_message: err.to_string(),
        }
    }
}

/// Render an error with its sources: the SDK's top-level `Display` is often only
/// "service error", the useful part sits further down the chain.
pub fn display_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Recover a Baton error carried inside an `io::Error` (the verified reader reports
/// integrity failures through `AsyncRead`).
pub fn from_io(err: std::io::Error) -> Error {
    if err.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        match err.into_inner().map(|inner| inner.downcast::<Error>()) {
            Some(Ok(baton)) => return *baton,
            _ => unreachable!("checked above"),
        }
    }
    Error::Service {
        service: "io",
        operation: "read",
        message: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_the_error_limit_and_are_namespaced() {
        for name in [
            names::TASK_FAILED_TO_START,
            names::OUT_OF_MEMORY,
            names::CONTAINER_EXITED,
            names::NO_CALLBACK,
            names::TASK_STOPPED,
            names::INTERRUPTED,
            names::WORKER_ERROR,
            names::INPUT_INTEGRITY,
            names::INVALID_INPUT,
            names::SERVICE_UNAVAILABLE,
            names::UNRESPONSIVE,
            names::TIMED_OUT,
            names::ITEMS_FAILED,
            names::STEP_FAILED,
        ] {
            assert!(name.starts_with("Baton."));
            assert!(name.len() <= crate::limits::SFN_ERROR_MAX_CHARS);
        }
    }

    #[test]
    fn io_errors_carry_baton_errors_through() {
        let io = std::io::Error::other(Error::InputIntegrity("size".into()));
        let back = from_io(io);
        assert_eq!(back.name(), names::INPUT_INTEGRITY);
        let plain = from_io(std::io::Error::other("boom"));
        assert_eq!(plain.name(), names::SERVICE_UNAVAILABLE);
    }
}
