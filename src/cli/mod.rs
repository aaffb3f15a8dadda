//! The command line: argument definitions and the small handlers that call into the
//! library. Exit codes follow kubectl: 0 success, 1 invalid input or changes found,
//! 2 usage or runtime errors.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::api::{self, LoadError};

mod classify;
mod controller;
mod delete;
mod demo;
mod describe;
mod doctor;
mod events;
mod fleet;
mod follow;
mod get;
mod init;
mod operate;
mod reconcile;
mod render;
mod table;
mod top;

/// Keeps AI coding-agent sessions running in tmux across subscription accounts.
#[derive(Debug, Parser)]
#[command(name = "failover", version, about, long_about = None)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format on stderr (`RUST_LOG` sets the level, e.g. `RUST_LOG=debug`).
    #[arg(long, global = true, value_enum, default_value = "human")]
    log_format: LogFormat,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Lines for people.
    Human,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a first manifest from the Claude Code homes on this machine: one account per
    /// login, shared conversations, a pool, an inbox and the controller's defaults.
    #[command(
        after_help = "Examples:\n  failover init\n  failover init ~/pools/main --dry-run\n  CLAUDE_CONFIG_DIR=~/.claude-work failover init --force\n\nLooks at ~/.claude, ~/.claude-*, CLAUDE_CONFIG_DIR and the CLAUDE_CONFIG_DIR=… assignments in ~/.bashrc, ~/.zshrc, ~/.bash_aliases and ~/.profile (read, never run). Writes failover.yaml and failover.schema.json. Exit codes: 0 written (or printed), 1 a file is there (--force replaces it), 2 error."
    )]
    Init(init::Args),
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
    /// Take down what the manifests own: our sessions, the tasks they held (back to
    /// their inbox), our agent settings entries and links; never a person's.
    #[command(
        after_help = "Examples:\n  failover delete -f manifests/ --dry-run\n  failover delete -f pool.yaml\n\nA running controller is told to stop first (SIGTERM), so that it does not put back what is deleted. Exit codes: 0 done or nothing to delete, 1 invalid manifests, 2 something could not be taken down."
    )]
    Delete(delete::Args),
    /// Restart a session's agent under its account, resuming its conversation; asked of
    /// the running controller, or done here when none runs.
    #[command(
        after_help = "Examples:\n  failover restart session w-3\n  failover restart session desk --dry-run\n  failover restart session w-3 -f manifests/\n\nOnly sessions of ours that the manifests want; a person's is refused. A session whose task's text is on its way waits for it. Exit codes: 0 restarted (or shown), 1 refused or invalid manifests, 2 failed or no answer from the controller."
    )]
    Restart(operate::RestartArgs),
    /// Stop a running task's turn and put the task back in its inbox (no try used); asked
    /// of the running controller, or done here when none runs.
    #[command(
        name = "return",
        after_help = "Examples:\n  failover return task fix-login.md\n  failover return task project/fix-login.md --dry-run\n\nIts session's agent starts afresh; the task waits in its inbox for the next free session. A task of a dedicated session, or not running, is refused. Exit codes: 0 returned (or shown), 1 refused or invalid manifests, 2 failed or no answer from the controller."
    )]
    Return(operate::ReturnArgs),
    /// Keep the manifests true, reacting to file events, tmux notifications and polls.
    #[command(
        after_help = "Examples:\n  failover controller -f ~/.config/failover/\n  RUST_LOG=debug failover controller -f pool.yaml --log-format json\n\nStops on SIGTERM or SIGINT (sessions keep running). Exit codes: 0 stopped cleanly, 1 invalid manifests, 2 error (another controller runs, broken shared state, no tmux)."
    )]
    Controller(controller::ControllerArgs),
    /// Show sessions, accounts, inboxes or events: what the controller sees, wants and did.
    #[command(
        after_help = "Examples:\n  failover get sessions\n  failover get sessions -w\n  failover get accounts -o json\n  failover get inboxes -f pool.yaml\n  failover get events --since 1h --for session/w-7\n  failover get events -w -o json | jq .message\n\nWithout -f, uses the manifests the controller last ran with."
    )]
    Get(get::GetArgs),
    /// Everything about one session, account, inbox or task, with its recent events.
    #[command(
        after_help = "Examples:\n  failover describe session w-5\n  failover describe account backup\n  failover describe inbox project\n  failover describe task fix-login.md -f manifests/\n\nExit codes: 0 shown, 1 no such object, 2 nothing readable."
    )]
    Describe(describe::Args),
    /// Check the machine against the manifests: tools, account homes and logins, hooks,
    /// links, the state folder, the controller, systemd, the fleet; say how to fix each
    /// fault.
    #[command(
        after_help = "Examples:\n  failover doctor -f ~/.config/failover/\n  failover doctor                 # the manifests the controller runs\n  failover doctor -f pool.yaml -o json | jq '.checks[] | select(.status != \"ok\")'\n\nOne line per check: ✓ fine, ! worth a look, ✗ broken, with the fix. Exit codes: 0 nothing broken, 1 something is (✗), 2 cannot run (manifests unreadable or invalid)."
    )]
    Doctor(doctor::Args),
    /// A live dashboard: accounts with their use and resets, sessions, queues and
    /// events, redrawn as the controller works; keys to filter, describe and attach.
    #[command(
        after_help = "Examples:\n  failover top\n  failover top -f manifests/\n  NO_COLOR=1 failover top --fleet\n\nKeys: arrows or j k, / filter, :sessions :accounts :inboxes :events :nodes, d describe, l screen history, enter attach (detach comes back), x restart, r return the task (y confirms), ? help, q quit. Needs a terminal: in a pipe, use failover get sessions -w. Exit codes: 0 quit, 2 no terminal or nothing readable."
    )]
    Top(top::Args),
    /// Read a saved agent screen: idle, busy, waiting, quota-exhausted (and until when),
    /// rate-limited or server-error, with the pattern and line that decided.
    #[command(
        after_help = "Examples:\n  tmux capture-pane -p -t ccl-auto-11 | failover classify\n  failover classify screen.txt -o json\n  failover classify screen.txt --agent codex\n  failover classify screen.txt --agent mine -f manifests/"
    )]
    Classify(classify::ClassifyArgs),
    /// Show the whole story on a private tmux server with stand-in agents: a pool, a
    /// dedicated session, tasks, a usage limit and the failover to a second account.
    #[command(
        after_help = "Examples:\n  cargo run --release -- demo\n  failover demo --keep    # then attach with the tmux command it prints"
    )]
    Demo(demo::Args),
    /// Print the JSON Schema of a manifest document, or the manifest reference.
    #[command(
        after_help = "Examples:\n  failover schema > failover.schema.json\n  failover schema -o markdown > docs/manifests.md"
    )]
    Schema(SchemaArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  failover completions bash > ~/.local/share/bash-completion/completions/failover\n  failover completions zsh > ~/.zfunc/_failover\n  failover completions fish > ~/.config/fish/completions/failover.fish"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write every subcommand's page too, generated from
    /// this command line's definition.
    #[command(
        after_help = "Examples:\n  failover man | man -l -\n  failover man --dir ~/.local/share/man/man1"
    )]
    Man {
        /// Write `failover.1` and one `failover-<subcommand>.1` per subcommand here.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// What Claude Code runs for each hook event and as its status line, and Codex as
    /// its notify program: records the agent's report in the state folder for the
    /// controller; always exits 0.
    #[command(
        after_help = "Examples (in an account home's settings.json, which apply writes):\n  \"hooks\": {\"Stop\": [{\"hooks\": [{\"type\": \"command\", \"command\": \"/usr/local/bin/failover hook\"}]}]}\n  \"statusLine\": {\"type\": \"command\", \"command\": \"/usr/local/bin/failover hook status-line\"}\nIn a Codex home's config.toml (Codex appends the JSON):\n  notify = [\"/usr/local/bin/failover\", \"hook\", \"--agent\", \"codex\"]\n\nReads FAILOVER_SESSION, FAILOVER_ACCOUNT and FAILOVER_REPORTS, which failover gives the agents it starts; without them it records and prints nothing."
    )]
    Hook(HookArgs),
    /// A stand-in for Claude Code that draws its screens (tests and the demo).
    #[command(hide = true)]
    SimAgent(crate::sim::Args),
}

/// `failover schema`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct SchemaArgs {
    /// What to print.
    #[arg(short = 'o', long = "output", value_enum, default_value = "json")]
    output: SchemaFormat,
}

/// `failover schema`'s formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SchemaFormat {
    /// The JSON Schema of one manifest document.
    Json,
    /// The manifest reference in Markdown (`docs/manifests.md`).
    Markdown,
}

/// `failover hook`'s arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct HookArgs {
    /// Run as the status line: print the footer (account, use, next reset) too.
    #[arg(value_enum, conflicts_with = "agent")]
    mode: Option<HookMode>,
    /// The agent that runs it, when not Claude Code (`codex`: its notify program,
    /// with the JSON as the last argument: `failover hook --agent codex '{…}'`).
    #[arg(long, value_enum)]
    agent: Option<crate::agents::AgentKind>,
}

/// What `failover hook` runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum HookMode {
    /// Claude Code's status line.
    StatusLine,
}

/// The `-f` argument every manifest-reading command takes.
#[derive(Debug, clap::Args)]
pub(crate) struct Manifests {
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
    // `failover hook` is on the agent's hot path, and an exit code of 2 would make
    // Claude Code block the prompt: its two forms skip argument parsing and logging.
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match args.iter().map(|a| a.to_str()).collect::<Vec<_>>()[..] {
        [Some("hook")] => return crate::report::hook::run(false),
        [Some("hook"), Some("status-line")] => return crate::report::hook::run(true),
        // Codex appends its JSON as the last argument.
        [Some("hook"), Some("--agent"), Some("codex"), ..] => {
            let payload = args.get(3..).and_then(<[_]>::last);
            return crate::report::hook::run_codex(payload.map(|p| p.as_os_str()));
        }
        _ => {}
    }
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Controller(_)) {
        "info"
    } else {
        "warn"
    };
    init_logs(cli.log_format, default_level);
    // Commands that only print die quietly, as Unix tools do, when their reader goes
    // away (`failover schema | head`), instead of panicking on the closed pipe. Not
    // those that write to tmux or to agents: a pipe closed there is an error to report.
    if matches!(
        cli.command,
        Command::Validate(_)
            | Command::Diff(_)
            | Command::Get(_)
            | Command::Describe(_)
            | Command::Doctor(_)
            | Command::Classify(_)
            | Command::Schema(_)
            | Command::Completions { .. }
            | Command::Man { .. }
    ) {
        sigpipe::reset();
    }
    match cli.command {
        Command::Init(args) => init::run(args),
        Command::Validate(m) => validate(&m.files),
        Command::Diff(args) => reconcile::diff(args),
        Command::Apply(args) => reconcile::apply(args),
        Command::Controller(args) => controller::run(args),
        Command::Get(args) => get::run(args),
        Command::Delete(args) => delete::run(args),
        Command::Restart(args) => operate::restart(args),
        Command::Return(args) => operate::give_back(args),
        Command::Describe(args) => describe::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Top(args) => top::run(args),
        Command::Classify(args) => classify::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Schema(args) => {
            match args.output {
                SchemaFormat::Json => print!("{}", api::schema::schema_text()),
                SchemaFormat::Markdown => print!("{}", api::reference::render()),
            }
            ExitCode::SUCCESS
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "failover", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man { dir } => man(dir.as_deref()),
        Command::SimAgent(args) => crate::sim::run(args),
        // `hook --agent codex …` is taken before parsing; Claude Code's is the default.
        Command::Hook(args) => match args.agent {
            Some(crate::agents::AgentKind::Codex) => crate::report::hook::run_codex(None),
            Some(crate::agents::AgentKind::ClaudeCode) | None => {
                crate::report::hook::run(args.mode == Some(HookMode::StatusLine))
            }
        },
    }
}

/// Prints the main man page, or writes every page into `dir`.
fn man(dir: Option<&std::path::Path>) -> ExitCode {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let written = match dir {
        None => clap_mangen::Man::new(cmd).render(&mut std::io::stdout()),
        Some(dir) => std::fs::create_dir_all(dir).and_then(|()| clap_mangen::generate_to(cmd, dir)),
    };
    match written {
        Ok(()) => {
            if let Some(dir) = dir {
                println!("man pages written to {}", dir.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let place = dir.map_or("stdout".to_owned(), |d| d.display().to_string());
            eprintln!("error: cannot write the man pages to {place}: {e}");
            ExitCode::from(2)
        }
    }
}

fn validate(files: &[PathBuf]) -> ExitCode {
    let m = match load_or_report(files) {
        Ok(m) => m,
        Err(code) => return code,
    };
    for advice in crate::api::advise(&m) {
        eprintln!("warning: {advice}");
    }
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

/// Logs to stderr through tracing: `RUST_LOG` wins over `default_level`.
fn init_logs(format: LogFormat, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Human => builder.with_ansi(color_stderr()).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
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

/// The async runtime a command runs on (one thread: the commands do one thing at a
/// time).
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// Observes without starting a tmux server or changing anything, and plans what
/// `apply` would do: the round's own look.
async fn look(
    desired: &crate::controller::round::Desired,
    settings: &api::Settings,
) -> Result<(crate::observe::Observed, crate::plan::Plan), Box<dyn std::error::Error>> {
    let tmux = observer(settings).await?;
    look_on(tmux.as_ref(), desired, settings).await
}

/// A read-only connection to the controller's tmux server (`None`: no server runs);
/// one that lives across looks (`top`) lists and captures only what changed.
async fn observer(
    settings: &api::Settings,
) -> Result<Option<crate::tmux::Tmux>, crate::tmux::Error> {
    let mode = crate::tmux::Mode::Observe {
        owner: settings.spec.owner.clone(),
    };
    crate::tmux::Tmux::connect(crate::controller::tmux_server(settings, false), mode).await
}

/// [`look`] through the connection `tmux`, and the persisted facts.
async fn look_on(
    tmux: Option<&crate::tmux::Tmux>,
    desired: &crate::controller::round::Desired,
    settings: &api::Settings,
) -> Result<(crate::observe::Observed, crate::plan::Plan), Box<dyn std::error::Error>> {
    let facts = crate::state::Facts::load(&settings.state_dir).unwrap_or_else(|e| {
        eprintln!(
            "warning: {e}; shown without the facts (the controller keeps the file aside \
             and rebuilds them at its next start)"
        );
        crate::state::Facts::default()
    });
    if let Err(e) = crate::state::probe_writable(&settings.state_dir) {
        eprintln!(
            "warning: {e}: the state folder cannot be written; a controller keeps its \
             sessions running and claims no new task until it can be"
        );
    }
    let tz = jiff::tz::TimeZone::system();
    let round = crate::controller::round::Round {
        act: crate::act::Context {
            tmux,
            owner: &settings.spec.owner,
            state_dir: Some(&settings.state_dir),
        },
        desired,
        scope: crate::plan::Scope::Sessions,
        tz: &tz,
        zones: jiff::tz::db(),
        began: crate::controller::round::Began::now(),
    };
    Ok(round.look(&facts).await?)
}

/// Loads manifests for a command; prints the problems and gives the exit code when
/// they are invalid (1) or unreadable (2).
fn load_or_report(files: &[PathBuf]) -> Result<api::Manifests, ExitCode> {
    api::load(files).map_err(report_load_error)
}

/// Prints a load error and gives its exit code: 1 invalid, 2 unreadable.
fn report_load_error(e: LoadError) -> ExitCode {
    match e {
        LoadError::Invalid(problems) => {
            eprint!("{}", problems.render(color_stderr()));
            let n = problems.items.len();
            eprintln!("{n} problem{} found", if n == 1 { "" } else { "s" });
            ExitCode::from(1)
        }
        e @ LoadError::Read { .. } => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
