//! `baton-worker`: wiring only; see `run.rs` for the worker's life.

use std::process::ExitCode;

fn main() -> ExitCode {
    baton::logs::init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    ExitCode::from(runtime.block_on(baton_worker::run::main()).code())
}
