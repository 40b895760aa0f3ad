//! prepare-input: turn an execution's input into the Payload for task 1.

pub mod handler;

pub use handler::{Input, PrepareInput, Prepared, Request, TaskSettings, parse, task_request};
