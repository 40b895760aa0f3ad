//! `baton-worker`: the built-in jobs, and `exec` for any program. Wiring only;
//! see `run.rs` for the worker's life.

fn main() -> std::process::ExitCode {
    baton_worker::main_with(baton_worker::builtin())
}
