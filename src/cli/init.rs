//! `failover init [DIR]`: finds the Claude Code homes on this machine ([`homes`]), reads
//! which login each holds ([`crate::login`], never a token), and writes a commented
//! manifest and the schema it names into DIR ([`compose`] makes the text, purely; this
//! file does the looking and the writing). It never overwrites without `--force`.

mod compose;
mod defaults;
mod homes;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use compose::{Composed, Home, Machine, Role};

/// The manifest file init writes.
const MANIFEST_FILE: &str = "failover.yaml";
/// The schema file beside it, named by the manifest's modeline.
const SCHEMA_FILE: &str = "failover.schema.json";

/// Arguments of `failover init`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Where to write the manifests. Default `$XDG_CONFIG_HOME/failover`, else
    /// `~/.config/failover`.
    #[arg(value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Replace files that are already there.
    #[arg(long)]
    force: bool,
    /// Print what would be written, each file under a line with its path; write nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Why init cannot run.
#[derive(Debug, thiserror::Error)]
enum Error {
    /// `$HOME` is missing or relative.
    #[error("HOME is not set to an absolute path: init looks for account homes under it")]
    NoHome,
    /// The current folder is unknown.
    #[error("cannot tell the current folder: {0}")]
    CurrentDir(std::io::Error),
    /// A file or folder cannot be written.
    #[error("{path}: cannot write: {source}")]
    Write {
        /// What.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Runs `init`: exit 0 written (or printed), 1 refused (a file is there), 2 error.
pub(super) fn run(args: Args) -> ExitCode {
    match init(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn init(args: &Args) -> Result<ExitCode, Error> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let user_home = var("HOME")
        .filter(|h| h.is_absolute())
        .ok_or(Error::NoHome)?;
    let cwd = std::env::current_dir().map_err(Error::CurrentDir)?;
    let dir = match &args.dir {
        Some(dir) => cwd.join(dir),
        None => var("XDG_CONFIG_HOME")
            .filter(|d| d.is_absolute())
            .unwrap_or_else(|| user_home.join(".config"))
            .join("failover"),
    };
    let env = homes::Env {
        home: user_home.clone(),
        config_dir: var("CLAUDE_CONFIG_DIR"),
    };
    let machine = look(&env, dir.clone(), cwd);
    let composed = compose::compose(&machine);
    let files = [
        (dir.join(MANIFEST_FILE), composed.text.clone()),
        (dir.join(SCHEMA_FILE), crate::api::schema::schema_text()),
    ];
    let existing: Vec<&Path> = files
        .iter()
        .map(|(path, _)| path.as_path())
        .filter(|p| p.symlink_metadata().is_ok())
        .collect();
    warn_about_other_manifests(&dir);
    if args.dry_run {
        print_files(&files);
        for path in &existing {
            eprintln!(
                "note: {} exists: init would refuse without --force",
                path.display()
            );
        }
        report(&composed, &machine, &mut std::io::stderr());
        return Ok(ExitCode::SUCCESS);
    }
    if !args.force && !existing.is_empty() {
        for path in &existing {
            eprintln!(
                "error: {} exists; init never overwrites (--force replaces it)",
                path.display()
            );
        }
        return Ok(ExitCode::from(1));
    }
    std::fs::create_dir_all(&dir).map_err(|source| Error::Write {
        path: dir.clone(),
        source,
    })?;
    for (path, text) in &files {
        write(path, text, args.force)?;
    }
    if let Err(e) = std::fs::create_dir_all(&machine.inbox) {
        eprintln!(
            "warning: {}: cannot create the inbox folder: {e}; create it before apply",
            machine.inbox.display()
        );
    }
    println!(
        "wrote {} and {}",
        files[0].0.display(),
        files[1].0.display()
    );
    report(&composed, &machine, &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// Looks at the machine: the homes, their logins, what stands where links belong.
fn look(env: &homes::Env, dir: PathBuf, cwd: PathBuf) -> Machine {
    let links = crate::api::resources::default_links();
    let found = homes::find(env);
    let shared_target = shared_target(&found, &env.home);
    let homes = found
        .into_iter()
        .map(|c| Home {
            login: crate::login::read(&c.path).map_err(|e| e.to_string()),
            in_the_way: links
                .iter()
                .filter_map(|name| {
                    in_the_way(&c.path.join(name), &shared_target.join(name))
                        .map(|what| (name.clone(), what))
                })
                .collect(),
            path: c.path,
            origin: c.origin,
        })
        .collect();
    let workdir = if cwd.parent().is_some() && cwd.is_dir() {
        cwd
    } else {
        env.home.clone()
    };
    Machine {
        user_home: env.home.clone(),
        dir,
        homes,
        inbox: workdir.join(".agent-queue/inbox"),
        workdir,
        shared_target,
        links,
        now: jiff::Timestamp::now(),
    }
}

/// The shared folder: the one a home's `projects` already links into (`<T>/projects`),
/// when that is not a home itself, else `~/.claude-shared`.
fn shared_target(found: &[homes::Candidate], user_home: &Path) -> PathBuf {
    let homes: Vec<&Path> = found.iter().map(|c| c.path.as_path()).collect();
    found
        .iter()
        .filter_map(|c| {
            let to = std::fs::read_link(c.path.join("projects")).ok()?;
            let to = c.path.join(to);
            let target = to.parent()?.to_path_buf();
            (to.file_name()? == "projects" && !homes.contains(&target.as_path())).then_some(target)
        })
        .next()
        .unwrap_or_else(|| user_home.join(".claude-shared"))
}

/// What stands at `link` in the way of a link to `expected`, in apply's words; `None`
/// when nothing is there or the link leads there already.
fn in_the_way(link: &Path, expected: &Path) -> Option<String> {
    let meta = link.symlink_metadata().ok()?;
    if meta.is_symlink() {
        let to = std::fs::read_link(link).ok()?;
        let same = to == expected
            || matches!(
                (std::fs::canonicalize(link), std::fs::canonicalize(expected)),
                (Ok(a), Ok(b)) if a == b
            );
        return (!same).then(|| format!("a link to {}", to.display()));
    }
    Some(if meta.is_dir() {
        let entries = std::fs::read_dir(link).map_or(0, Iterator::count);
        format!("a real folder ({entries} entries)")
    } else if meta.is_file() {
        "a file".to_owned()
    } else {
        "something that is neither file nor folder".to_owned()
    })
}

/// Writes `text` to `path` whole (through a temporary file beside it), mode 0644;
/// without `force`, never over a file that appeared meanwhile.
fn write(path: &Path, text: &str, force: bool) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let fail = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    file.write_all(text.as_bytes()).map_err(fail)?;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(fail)?;
    if force {
        file.persist(path).map_err(|e| fail(e.error))?;
    } else {
        file.persist_noclobber(path).map_err(|e| fail(e.error))?;
    }
    Ok(())
}

/// Warns when DIR holds other manifests: `-f DIR` reads them too.
fn warn_about_other_manifests(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut others: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| (n.ends_with(".yaml") || n.ends_with(".yml")) && n != MANIFEST_FILE)
        .collect();
    others.sort();
    for name in others {
        eprintln!(
            "warning: {} also holds {name}: `-f {}` reads it with {MANIFEST_FILE}",
            dir.display(),
            dir.display()
        );
    }
}

/// Prints each file under a line with its path; the schema by its size only.
fn print_files(files: &[(PathBuf, String)]) {
    for (path, text) in files {
        println!("==> {} <==", path.display());
        if path.ends_with(SCHEMA_FILE) {
            println!(
                "(what `failover schema` prints: {} lines)",
                text.lines().count()
            );
        } else {
            print!("{text}");
        }
    }
}

/// Tells what was found and what to run next.
fn report(composed: &Composed, machine: &Machine, out: &mut dyn std::io::Write) {
    let dir = shell_words::quote(&machine.dir.to_string_lossy()).into_owned();
    let mut lines = Vec::new();
    if composed.found.is_empty() {
        lines.push(format!(
            "found no Claude Code home (looked at {}/.claude, {}/.claude-*, CLAUDE_CONFIG_DIR and {})",
            machine.user_home.display(),
            machine.user_home.display(),
            homes::SHELL_FILES.join(", ")
        ));
    } else {
        lines.push("found:".to_owned());
    }
    for found in &composed.found {
        let label = found.label.as_deref().unwrap_or("no login");
        let role = match &found.role {
            Role::Account { name, priority } => format!("account {name} (priority {priority})"),
            Role::Duplicate { of, account } => format!(
                "same login as {} (account {account}): left out, with a comment",
                of.display()
            ),
            Role::NoLogin(_) => "written commented out: log in, then init --force".to_owned(),
        };
        lines.push(format!("  {}: {label}: {role}", found.path.display()));
    }
    for line in &lines {
        let _ = writeln!(out, "{line}");
    }
    if composed.placeholder {
        eprintln!(
            "note: no home holding a login was found; the accounts written are placeholders \
             ({}/.claude-main, {}/.claude-alt): log in to each with CLAUDE_CONFIG_DIR=<home> claude \
             and /login, then run failover init --force {dir}",
            machine.user_home.display(),
            machine.user_home.display(),
        );
    }
    if !composed.unshared.is_empty() {
        eprintln!(
            "note: conversations are not shared with {} yet (their own folders are where the \
             links go): see the comment above the SharedState in {}",
            composed.unshared.join(", "),
            machine.dir.join(MANIFEST_FILE).display()
        );
    }
    let _ = writeln!(
        out,
        "next:\n  failover doctor -f {dir}\n  failover diff -f {dir}\n  failover apply -f {dir}\n  failover controller -f {dir}"
    );
}
