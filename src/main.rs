//! The `sockit` binary: parse arguments, start logging, dispatch, and turn
//! the outcome into an exit code.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use sockit::cli::{self, Cli};
use sockit::{commands, error, logging, memory, net};

fn main() -> ExitCode {
    memory::tune();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Request log lines wait in their worker until it goes idle.
        .on_thread_park(logging::hand_over)
        .on_thread_stop(logging::hand_over)
        .build();
    let rt = match rt {
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
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Ok((Cli::from_arg_matches(&m)?, subcommand_path(&m))));
    let (cli, path) = match parsed {
        Ok(parsed) => parsed,
        Err(err) if !err.use_stderr() => err.exit(), // --help, --version
        Err(err) => {
            eprintln!("sockit: {}", error::usage_line(&err));
            return ExitCode::from(error::EXIT_USAGE);
        }
    };
    let logs = logging::init(cli.verbose, cli.quiet, cli.log_format);
    net::raise_fd_limit();
    let outcome = commands::run(cli).await;
    // Every queued log line goes out before the final word.
    drop(logs);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // `sockit … | head` closing early is a normal end of a pipeline.
        Err(err) if error::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let line = error::render(&err, |key| cli::flag_name(&path, key));
            eprintln!("sockit: {line}");
            ExitCode::from(error::exit_code(&err))
        }
    }
}

/// The subcommands named on the command line, outermost first.
fn subcommand_path(matches: &clap::ArgMatches) -> Vec<String> {
    let mut path = Vec::new();
    let mut m = matches;
    while let Some((name, sub)) = m.subcommand() {
        path.push(name.to_string());
        m = sub;
    }
    path
}
