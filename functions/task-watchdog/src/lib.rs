//! The task watchdog: an ECS task stopped without calling back → fail its token.

pub mod handler;

pub use handler::{Outcome, Watchdog};
