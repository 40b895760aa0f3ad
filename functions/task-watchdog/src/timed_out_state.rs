//! The request of a callback task state that timed out: `{"taskTimedOut": …}`, as
//! the TimedOut state of statemachine/task.asl.json builds it. The types only: what
//! the watchdog does with it is in `timed_out`.

use baton::error::names;
use serde::Deserialize;
use serde_json::Value;

/// The invocation's key: `{"taskTimedOut": <TimedOutState>}`, which the TimedOut
/// state of statemachine/task.asl.json builds in its Parameters.
pub const REQUEST_KEY: &str = "taskTimedOut";

/// The fields of the request, as [`TimedOutState`] reads them (all required) and
/// the state machine's Parameters name them.
pub const FIELDS: [&str; 6] = [
    "executionArn",
    "state",
    "output",
    "heartbeatSeconds",
    "timeoutSeconds",
    "timedOut",
];

/// Under `timedOut`: where the callback task state's Catch of
/// `States.HeartbeatTimeout` puts the error (its ResultPath `$.timedOut.heartbeat`).
pub const CAUGHT_HEARTBEAT: &str = "heartbeat";
/// Under `timedOut`: where its Catch of `States.Timeout` puts the error (its
/// ResultPath `$.timedOut.timeout`). Anything but [`CAUGHT_HEARTBEAT`] reads as a
/// timeout.
pub const CAUGHT_TIMEOUT: &str = "timeout";

/// What the state machine sends ([`REQUEST_KEY`], fields [`FIELDS`]), from the
/// catching state's input and context object.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TimedOutState {
    /// `$$.Execution.Id` (for the log, and the folder when the output names none).
    pub execution_arn: String,
    /// The task state that timed out (for the cause).
    pub state: String,
    /// The state's `BATON_OUTPUT`: its tasks, every attempt's, write there, and only
    /// they: that is how they are found.
    pub output: String,
    pub heartbeat_seconds: u64,
    pub timeout_seconds: u64,
    /// Where the Catch put the caught error: `{"heartbeat": {Error, Cause}}` from the
    /// `States.HeartbeatTimeout` catcher, `{"timeout": …}` from `States.Timeout`.
    pub timed_out: Value,
}

impl TimedOutState {
    /// No beat for HeartbeatSeconds (`Baton.Unresponsive`), or longer than
    /// TimeoutSeconds (`Baton.TimedOut`).
    pub fn error(&self) -> &'static str {
        if self.timed_out.get(CAUGHT_HEARTBEAT).is_some() {
            names::UNRESPONSIVE
        } else {
            names::TIMED_OUT
        }
    }

    pub(crate) fn what(&self) -> String {
        if self.error() == names::UNRESPONSIVE {
            format!("no heartbeat for {} s", self.heartbeat_seconds)
        } else {
            format!("ran longer than its {} s", self.timeout_seconds)
        }
    }
}
