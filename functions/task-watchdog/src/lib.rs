//! The task watchdog: one Lambda for four kinds of invocation ([`Invocation`]),
//! each in a module of its own.
//!
//! - [`task_stopped`]: an ECS task stopped ("ECS Task State Change", from
//!   EventBridge through the stack's SQS queue) without calling back → fail its
//!   token with the Baton error for how it stopped; abort the uploads it left open.
//! - [`execution_ended`]: an execution ended ("Step Functions Execution Status
//!   Change", the same way) → stop the tasks it left running, abort the uploads
//!   left open under its folder.
//! - [`timed_out`]: a callback task state timed out (`{"taskTimedOut": …}` from
//!   statemachine/task.asl.json) → stop its tasks, answer the typed error.
//! - [`sync_verdict`]: a `.sync` task state failed (`{"stoppedTask": …}` from
//!   statemachine/sync.asl.json) → answer its Baton error and whether to retry.
//!
//! [`handler`] holds the shared [`Watchdog`] and the dispatch; [`invocation`] tells
//! the kinds apart, with [`timed_out_state`] the shape of a timed-out state's request.

pub mod execution_ended;
pub mod handler;
pub mod invocation;
pub mod sync_verdict;
pub mod task_stopped;
pub mod timed_out;
pub mod timed_out_state;

pub use handler::{Outcome, Watchdog};
pub use invocation::{Event, Invocation};
