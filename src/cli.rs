//! The command line: argument definitions and the small handlers that call into the
//! library. Exit codes follow kubectl: 0 success, 1 invalid input or changes found,
//! 2 usage or runtime errors.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::api::{self, LoadError};

/// Keeps AI coding-agent sessions running in tmux across subscription accounts.
#[derive(Debug, Parser)]
#[command(name = "failover", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check manifests against the schema and each other; print every problem.
    #[command(
        after_help = "Examples:\n  failover validate -f manifests/\n  cat pool.yaml | failover validate -f -\n\nExit codes: 0 valid, 1 invalid, 2 unreadable input or usage error."
    )]
    Validate {
        /// Manifest files, folders (their *.yaml and *.yml) or `-` for stdin. Repeatable.
        #[arg(
            short = 'f',
            long = "filename",
            required = true,
            value_name = "FILE|DIR|-"
        )]
        files: Vec<PathBuf>,
    },
    /// Print the JSON Schema of a manifest document.
    #[command(after_help = "Example:\n  failover schema > failover.schema.json")]
    Schema,
    /// A stand-in for Claude Code that draws its screens (tests and the demo).
    #[command(hide = true)]
    SimAgent(crate::sim::Args),
}

/// Parses the process arguments and runs the command.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { files } => validate(&files),
        Command::Schema => {
            print!("{}", api::schema::schema_text());
            ExitCode::SUCCESS
        }
        Command::SimAgent(args) => crate::sim::run(args),
    }
}

fn validate(files: &[PathBuf]) -> ExitCode {
    match api::load(files) {
        Ok(m) => {
            let sessions: u32 = m.pools.iter().map(|p| p.spec.max).sum();
            println!(
                "valid: accounts {}, pools {} ({} sessions at most), dedicated sessions {}, inboxes {}",
                m.accounts.len(),
                m.pools.len(),
                sessions,
                m.dedicated.len(),
                m.inboxes.len()
            );
            ExitCode::SUCCESS
        }
        Err(LoadError::Invalid(problems)) => {
            eprint!("{}", problems.render(color_stderr()));
            eprintln!(
                "{} problem{} found",
                problems.items.len(),
                if problems.items.len() == 1 { "" } else { "s" }
            );
            ExitCode::from(1)
        }
        Err(e @ LoadError::Read { .. }) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Whether stderr gets colours: a terminal, and `NO_COLOR` unset.
fn color_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
