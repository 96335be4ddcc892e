//! The `iam-keys` binary: parse the arguments, run, and map the result to an exit code.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = iam_keys::cli::Cli::parse();
    match iam_keys::run(cli) {
        Ok(outcome) => outcome.into(),
        Err(error) => {
            eprintln!("iam-keys: {}", error.report());
            ExitCode::from(error.exit_code())
        }
    }
}
