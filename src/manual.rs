//! Shell completions and the manual page, generated from the same clap
//! definitions the parser uses, so neither can fall out of step.

use std::io::{self, Write};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// Writes the completion script for `shell`.
pub fn completions(shell: Shell, out: &mut dyn Write) -> io::Result<()> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "sockit", out);
    out.flush()
}

/// Writes the manual in roff: the `sockit` page, then a page per
/// subcommand, named `sockit-NAME` as git and cargo name theirs.
pub fn man(out: &mut dyn Write) -> io::Result<()> {
    let mut cmd = Cli::command();
    cmd.build();
    render(&cmd, out)?;
    out.flush()
}

fn render(cmd: &clap::Command, out: &mut dyn Write) -> io::Result<()> {
    clap_mangen::Man::new(cmd.clone()).render(out)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        if sub.get_name() == "help" {
            continue;
        }
        let name = format!("{}-{}", cmd.get_name(), sub.get_name());
        render(&sub.clone().name(name), out)?;
    }
    Ok(())
}
