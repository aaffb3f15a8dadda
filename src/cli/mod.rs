//! The command line: argument definitions and the small handlers that call into the
//! library. Exit codes follow kubectl: 0 success, 1 invalid input or changes found,
//! 2 usage or runtime errors.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::api::{self, LoadError};

mod reconcile;

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
    Validate(Manifests),
    /// Show what apply would change, like `terraform plan`; changes nothing.
    #[command(
        after_help = "Examples:\n  failover diff -f pool.yaml\n  failover diff -f manifests/ --diff\n  failover diff -f pool.yaml -o json | jq .summary\n\nExit codes: 0 no changes, 1 changes, 2 error or refused items."
    )]
    Diff(reconcile::DiffArgs),
    /// Make tmux and the filesystem match the manifests, now.
    #[command(
        after_help = "Examples:\n  failover apply -f pool.yaml\n  failover apply -f manifests/ --dry-run\n\nExit codes: 0 converged, 1 invalid manifests, 2 error or refused items."
    )]
    Apply(reconcile::ApplyArgs),
    /// Print the JSON Schema of a manifest document.
    #[command(after_help = "Example:\n  failover schema > failover.schema.json")]
    Schema,
    /// A stand-in for Claude Code that draws its screens (tests and the demo).
    #[command(hide = true)]
    SimAgent(crate::sim::Args),
}

/// The `-f` argument every manifest-reading command takes.
#[derive(Debug, clap::Args)]
pub struct Manifests {
    /// Manifest files, folders (their *.yaml and *.yml) or `-` for stdin. Repeatable.
    #[arg(
        short = 'f',
        long = "filename",
        required = true,
        value_name = "FILE|DIR|-"
    )]
    pub files: Vec<PathBuf>,
}

/// Parses the process arguments and runs the command.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate(m) => validate(&m.files),
        Command::Diff(args) => reconcile::diff(args),
        Command::Apply(args) => reconcile::apply(args),
        Command::Schema => {
            print!("{}", api::schema::schema_text());
            ExitCode::SUCCESS
        }
        Command::SimAgent(args) => crate::sim::run(args),
    }
}

fn validate(files: &[PathBuf]) -> ExitCode {
    let m = match load_or_report(files) {
        Ok(m) => m,
        Err(code) => return code,
    };
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

/// Whether stderr gets colours: a terminal, and `NO_COLOR` unset.
fn color_stderr() -> bool {
    std::io::stderr().is_terminal() && no_color_unset()
}

/// Whether stdout gets colours: a terminal, and `NO_COLOR` unset.
fn color_stdout() -> bool {
    std::io::stdout().is_terminal() && no_color_unset()
}

fn no_color_unset() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Loads manifests for a command; prints the problems and gives the exit code when
/// they are invalid (1) or unreadable (2).
fn load_or_report(files: &[PathBuf]) -> Result<api::Manifests, ExitCode> {
    match api::load(files) {
        Ok(m) => Ok(m),
        Err(LoadError::Invalid(problems)) => {
            eprint!("{}", problems.render(color_stderr()));
            eprintln!(
                "{} problem{} found",
                problems.items.len(),
                if problems.items.len() == 1 { "" } else { "s" }
            );
            Err(ExitCode::from(1))
        }
        Err(e @ LoadError::Read { .. }) => {
            eprintln!("error: {e}");
            Err(ExitCode::from(2))
        }
    }
}
