//! Baton: hand work and data from one ECS task to the next through Step Functions.
//!
//! The library holds every decision the Lambdas and the worker share: the Payload
//! claim check and its budgets ([`payload`]), streaming S3 with verification
//! ([`store`]), task-token callbacks ([`callback`]), the ECS task-state-change model
//! and the watchdog's verdict ([`ecs_event`]), the `Baton.*` error names ([`error`])
//! and the service limits ([`limits`]); a Distributed Map's results merged into
//! one manifest in item order ([`map_results`]).

pub mod aws;
pub mod callback;
pub mod ecs_event;
pub mod error;
pub mod execution_event;
pub mod fanin;
pub mod handoff;
pub mod limits;
pub mod logs;
pub mod map_results;
pub mod metrics;
pub mod payload;
pub mod store;

pub use callback::{CallbackClient, CallbackOutcome, TaskToken};
pub use error::{Error, names};
pub use payload::{Payload, S3Pointer};
pub use store::Store;
