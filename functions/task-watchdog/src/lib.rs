//! The task watchdog: an ECS task stopped without calling back → fail its token.

pub mod handler;
pub mod timed_out;

pub use handler::{Outcome, Watchdog};
