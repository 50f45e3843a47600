//! How a command ends: its exit code, or what went wrong.

use std::fmt::Display;
use std::process::ExitCode;

/// Exit code for input that is not valid (bad tick rows, invalid config).
pub const EXIT_INVALID_INPUT: u8 = 2;

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// The user's input is not valid: the message is printed as it is
    /// (it names the file, line and field) and the exit code is 2.
    Invalid(String),
    /// Anything else: printed as `error: ...` with its causes, exit code 1.
    Other(anyhow::Error),
}

/// What every command returns.
pub type Outcome = Result<ExitCode, Failure>;

/// The user's input is not valid; `message` is printed as it is.
pub fn invalid(message: impl Display) -> Failure {
    Failure::Invalid(message.to_string())
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Failure {
        Failure::Other(err)
    }
}

impl From<std::io::Error> for Failure {
    fn from(err: std::io::Error) -> Failure {
        Failure::Other(err.into())
    }
}

/// Prints `outcome`'s failure, if any, and gives the exit code.
pub fn exit(outcome: Outcome) -> ExitCode {
    match outcome {
        Ok(code) => code,
        Err(Failure::Invalid(message)) => {
            note(&message);
            ExitCode::from(EXIT_INVALID_INPUT)
        }
        // A closed pipe (`quiver features ... | head`) is the reader's choice.
        Err(Failure::Other(err)) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(Failure::Other(err)) => {
            note(&format!("error: {err:#}"));
            ExitCode::FAILURE
        }
    }
}

/// A line on stderr that never panics (stderr may be a closed pipe).
pub fn note(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
