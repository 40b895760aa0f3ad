//! What a command ends with: its [`Outcome`] or [`Failure`], printed on stdout as a
//! line or, with `--json`, as one JSON document; and its exit code.

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use serde_json::{Value, json};

use baton_cli::exit;

/// Why a command could not do its work, and the exit code that says so.
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn aws(operation: &str, err: &dyn std::error::Error) -> Failure {
        Failure {
            code: exit::AWS_ERROR,
            message: format!("{operation}: {}", baton::error::display_chain(err)),
        }
    }

    pub fn aws_text(message: String) -> Failure {
        Failure {
            code: exit::AWS_ERROR,
            message,
        }
    }

    pub fn local(message: String) -> Failure {
        Failure {
            code: exit::LOCAL_ERROR,
            message,
        }
    }
}

/// What a command did: its exit code, its JSON document, and its line for stdout.
pub struct Outcome {
    pub code: u8,
    pub document: Value,
    pub line: String,
}

/// A usage error found after parsing (none of the settings a command needs): clap's
/// own message and exit code 2. `command`: the command line's definition
/// (`Cli::command()`).
pub fn usage(mut command: clap::Command, message: &str) -> ! {
    command
        .error(clap::error::ErrorKind::MissingRequiredArgument, message)
        .exit()
}

/// A time as the documents and the lines show it (RFC 3339).
pub fn time(t: &DateTime) -> String {
    t.fmt(Format::DateTime).unwrap_or_default()
}

/// Print a command's result on stdout: its line, or with `json` its JSON document (a
/// failure's message goes to stderr, and it prints no line). The exit code: the
/// result's, or a local error's when stdout cannot be written.
pub fn print(result: Result<Outcome, Failure>, json: bool) -> u8 {
    let (code, document, line) = match result {
        Ok(o) => (o.code, o.document, Some(o.line)),
        Err(f) => {
            eprintln!("baton: {}", f.message);
            let kind = if f.code == exit::AWS_ERROR {
                "aws"
            } else {
                "local"
            };
            (
                f.code,
                json!({"error": {"kind": kind, "message": f.message, "exitCode": f.code}}),
                None,
            )
        }
    };
    let printed = if json {
        Some(document.to_string())
    } else {
        line
    };
    if let Some(text) = printed {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        if writeln!(stdout, "{text}")
            .and_then(|_| stdout.flush())
            .is_err()
        {
            return exit::LOCAL_ERROR;
        }
    }
    code
}
