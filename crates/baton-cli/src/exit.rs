//! `baton`'s exit codes: one per end of an execution, one for a usage error (clap's,
//! and only that), one for an AWS error and one for a local error.

/// The execution SUCCEEDED, or a command that follows no execution did its work.
pub const SUCCEEDED: u8 = 0;
/// The execution FAILED.
pub const FAILED: u8 = 1;
/// A usage error: a wrong flag or argument, or none of the settings a command needs.
/// Never anything else.
pub const USAGE: u8 = 2;
/// The execution TIMED_OUT.
pub const TIMED_OUT: u8 = 3;
/// The execution was ABORTED (StopExecution, `baton stop`).
pub const ABORTED: u8 = 4;
/// A call to AWS failed (refused, throttled past the retries, not found, unreachable),
/// or answered something `baton` cannot use (a stack without the outputs it needs).
pub const AWS_ERROR: u8 = 5;
/// A local error: a file to upload could not be read, a task's log file could not be
/// read, stdout could not be written.
pub const LOCAL_ERROR: u8 = 6;

/// The table `baton --help` and docs/cli.md show.
pub const TABLE: &str = "\
Exit codes:
  0  SUCCEEDED (or the command did its work: ls, logs, stop, run --detach)
  1  FAILED
  2  usage error (a wrong flag or argument, or no --stack/--state-machine)
  3  TIMED_OUT
  4  ABORTED
  5  AWS error (a call to AWS failed or answered something unusable)
  6  local error (a file could not be read or written)";

/// The exit code for an execution's final status. A status that is not an end
/// (RUNNING, PENDING_REDRIVE: `run --detach`) is 0: the command did its work.
pub fn for_status(status: &str) -> u8 {
    match status {
        "FAILED" => FAILED,
        "TIMED_OUT" => TIMED_OUT,
        "ABORTED" => ABORTED,
        _ => SUCCEEDED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_end_has_its_own_code_and_2_is_only_usage() {
        assert_eq!(for_status("SUCCEEDED"), 0);
        assert_eq!(for_status("FAILED"), 1);
        assert_eq!(for_status("TIMED_OUT"), 3);
        assert_eq!(for_status("ABORTED"), 4);
        assert_eq!(for_status("RUNNING"), 0);
        let ends = [
            SUCCEEDED,
            FAILED,
            USAGE,
            TIMED_OUT,
            ABORTED,
            AWS_ERROR,
            LOCAL_ERROR,
        ];
        let distinct: std::collections::HashSet<_> = ends.iter().collect();
        assert_eq!(distinct.len(), ends.len());
        for status in [
            "SUCCEEDED",
            "FAILED",
            "TIMED_OUT",
            "ABORTED",
            "RUNNING",
            "?",
        ] {
            assert_ne!(for_status(status), USAGE, "{status}");
        }
        for code in ends {
            assert!(
                TABLE.contains(&format!("\n  {code}  ")),
                "{code} in the table"
            );
        }
    }
}
