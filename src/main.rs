use std::io::Write;
use std::process::ExitCode;

use bpipe::cli::Cli;
use bpipe::{outcome, relay};

fn main() -> ExitCode {
    outcome::install_panic_hook();
    let cli = Cli::parse_checked();
    match relay::run(&cli) {
        Ok(outcome) => ExitCode::from(outcome.exit_status()),
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "{}", outcome::error_line(&error));
            ExitCode::from(1)
        }
    }
}
