//! offload-output: turn task 1's callback output into task 2's input.

pub mod handler;

pub use handler::{OffloadOutput, Request, parse};
