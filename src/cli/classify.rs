//! `failover classify`: how a screen reads, and why.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::api::{AgentProfileSpec, BUILTIN_AGENT};
use crate::screen::Classifier;

/// Arguments of `failover classify`.
#[derive(Debug, clap::Args)]
pub(super) struct ClassifyArgs {
    /// A saved screen (`tmux capture-pane -p -t SESSION > screen.txt`), or `-` for stdin.
    #[arg(default_value = "-", value_name = "FILE|-")]
    screen: PathBuf,
    /// Read the screen with this agent profile's patterns (from -f, or a built-in one:
    /// `claude`, `codex`); default `claude`.
    #[arg(long, default_value = BUILTIN_AGENT)]
    agent: String,
    /// Manifests holding the profile; without them, the built-in profiles.
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR")]
    files: Vec<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "text")]
    output: super::reconcile::Output,
}

/// Prints the verdict: exit 0, 1 invalid manifests, 2 unreadable input.
pub(super) fn run(args: ClassifyArgs) -> ExitCode {
    let profile = if args.files.is_empty() {
        let builtin = crate::agents::BUILTIN.iter().find(|b| b.name == args.agent);
        match builtin {
            Some(b) => AgentProfileSpec::of_kind(b.kind),
            None => {
                let known: Vec<&str> = crate::agents::BUILTIN.iter().map(|b| b.name).collect();
                eprintln!(
                    "error: no built-in AgentProfile `{}` (known: {}); name manifests with -f",
                    args.agent,
                    known.join(", ")
                );
                return ExitCode::from(2);
            }
        }
    } else {
        let m = match super::load_or_report(&args.files) {
            Ok(m) => m,
            Err(code) => return code,
        };
        match m.agent(&args.agent) {
            Some(a) => a.spec.clone(),
            None => {
                eprintln!("error: no AgentProfile `{}` in the manifests", args.agent);
                return ExitCode::from(2);
            }
        }
    };
    let mut text = String::new();
    let read = if args.screen.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).map(drop)
    } else {
        std::fs::read_to_string(&args.screen).map(|t| text = t)
    };
    if let Err(e) = read {
        eprintln!("error: {}: {e}", args.screen.display());
        return ExitCode::from(2);
    }
    let classifier = match Classifier::new(&profile.screen) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let verdict = classifier.read(
        &text,
        &crate::screen::Local {
            now: jiff::Zoned::now(),
            zones: jiff::tz::db().clone(),
        },
    );
    match args.output {
        super::reconcile::Output::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&verdict).unwrap_or_default()
            );
        }
        super::reconcile::Output::Text => {
            let class = serde_json::to_value(verdict.class)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            match verdict.resets_at {
                Some(t) => println!("{class}, resets {t}"),
                None => println!("{class}"),
            }
            if let (Some(pattern), Some(line)) = (&verdict.pattern, &verdict.line) {
                println!("  pattern: {pattern}");
                println!("  line:    {line}");
            }
        }
    }
    ExitCode::SUCCESS
}
