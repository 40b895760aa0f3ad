//! Structured logging for the Lambdas and the worker.

use tracing_subscriber::EnvFilter;

/// JSON log lines on stdout (CloudWatch and the local stack parse them), one
/// object per event with its fields. `BATON_LOG_FORMAT=text` gives plain lines for
/// a terminal. The level comes from `RUST_LOG` or `AWS_LAMBDA_LOG_LEVEL` (default
/// `info`).
pub fn init() {
    let level = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL"))
        .unwrap_or_else(|_| "info".into())
        .to_lowercase();
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"));
    let text = std::env::var("BATON_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("text"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // `try_init`: a second call (tests) keeps the first subscriber.
    let _ = if text {
        builder.try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    };
}
