//! The `sockit` binary: parse arguments, start logging, dispatch, and turn
//! the outcome into an exit code.

use std::process::ExitCode;

use clap::Parser;
use sockit::cli::Cli;
use sockit::{commands, error, logging, net};

fn main() -> ExitCode {
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("sockit: start runtime: {err}");
            return ExitCode::from(error::EXIT_FAILURE);
        }
    };
    let code = rt.block_on(run());
    // A blocking read of stdin may still be parked in the runtime's thread
    // pool; waiting for it would keep the process alive until the user
    // presses Enter.
    rt.shutdown_background();
    code
}

async fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => err.exit(), // --help, --version
        Err(err) => {
            eprintln!("sockit: {}", error::usage_line(&err));
            return ExitCode::from(error::EXIT_USAGE);
        }
    };
    logging::init(cli.verbose, cli.quiet, cli.log_format);
    net::raise_fd_limit();
    match commands::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        // `sockit … | head` closing early is a normal end of a pipeline.
        Err(err) if error::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sockit: {}", error::render(&err));
            ExitCode::from(error::exit_code(&err))
        }
    }
}
