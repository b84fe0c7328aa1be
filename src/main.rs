use std::io::Write;
use std::process::ExitCode;

use bpipe::cli::Cli;
use bpipe::supervise::{self, outcome};

fn main() -> ExitCode {
    outcome::install_panic_hook();
    let cli = Cli::parse_checked();
    match supervise::run(&cli) {
        Ok(outcome) => ExitCode::from(outcome.exit_status()),
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "{}", outcome::error_line(&error));
            ExitCode::from(1)
        }
    }
}
