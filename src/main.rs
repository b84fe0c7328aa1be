use std::io::Write;
use std::process::ExitCode;

use bpipe::cli::{Cli, Mode};
use bpipe::control::{client, top};
use bpipe::supervise::{self, outcome};

fn main() -> ExitCode {
    outcome::install_panic_hook();
    let cli = Cli::parse_checked();
    let status = match cli.mode() {
        Mode::Relay => supervise::run(&cli).map(outcome::Outcome::exit_status),
        Mode::Query(target) => client::query(&cli, &target),
        Mode::Remote(target) => client::remote(&cli, &target),
        Mode::Top { once } => top::top(&cli, once),
    };
    match status {
        Ok(status) => ExitCode::from(status),
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "{}", outcome::error_line(&error));
            ExitCode::from(1)
        }
    }
}
