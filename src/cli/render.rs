//! Showing a plan: `terraform plan`-style text, JSON for scripts, and a unified diff of
//! the observed against the desired world as YAML.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::{Value, json};

use crate::api::Manifests;
use crate::observe::{Entry, Observed};
use crate::plan::{Action, Event, FsAction, Plan, SessionAction, TaskAction};

const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const RED: &str = "\x1b[31m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// The plan as text, closing with `Plan: N to add, M to change, K to delete.` or
/// `No changes.`. Colours only when `color` is set.
pub(super) fn render_text(plan: &Plan, color: bool) -> String {
    let mut out = String::new();
    write_swaps(&mut out, plan, color);
    if !plan.actions.is_empty() {
        out.push_str("failover will perform the following actions:\n\n");
        for action in &plan.actions {
            let line = format!("  {} {action}", action.sign());
            let code = match action.sign() {
                '+' => GREEN,
                '~' => YELLOW,
                _ => RED,
            };
            let _ = writeln!(out, "{}", paint(color, code, line));
        }
        out.push('\n');
    }
    if !plan.refused.is_empty() {
        out.push_str("Refused:\n\n");
        for r in &plan.refused {
            let line = format!("  ! {}: {}", r.object.spoken(), r.reason);
            let _ = writeln!(out, "{}", paint(color, RED, line));
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{}", paint(color, BOLD, summary(plan)));
    out
}

/// `text` in the colour `code`, when `color` is set.
fn paint(color: bool, code: &str, text: String) -> String {
    if color {
        format!("{code}{text}{RESET}")
    } else {
        text
    }
}

/// Why sessions move: each swap of the active account, then the readings behind it
/// (each account's use, the limits confirmed). Nothing without a swap.
fn write_swaps(out: &mut String, plan: &Plan, color: bool) {
    let swaps: Vec<(&str, &str, &str)> = plan
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Swap {
                from, to, reason, ..
            } => Some((from.as_str(), to.as_str(), reason.as_str())),
            _ => None,
        })
        .collect();
    if swaps.is_empty() {
        return;
    }
    out.push_str("Accounts:\n\n");
    for (from, to, reason) in swaps {
        let line = format!("  ~ active account {from} -> {to}: {reason}");
        let _ = writeln!(out, "{}", paint(color, YELLOW, line));
    }
    for (account, reading) in &plan.facts.usage {
        let windows: Vec<String> = reading
            .usage
            .windows()
            .map(|(name, w)| format!("{name} {:.0}% (resets {})", w.used, w.resets_at))
            .collect();
        if windows.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "      account {account} use, reported by {} at {}: {}",
            reading.session,
            reading.at,
            windows.join(", ")
        );
    }
    for e in &plan.events {
        if let Event::QuotaDetected {
            account,
            session,
            line,
            resets_at,
            confirmed: true,
            ..
        } = e
        {
            let resets = resets_at.map_or(String::new(), |t| format!(", resets {t}"));
            let _ = writeln!(
                out,
                "      account {account} read exhausted on {session}: \"{line}\"{resets}"
            );
        }
    }
    out.push('\n');
}

/// The closing line: the counts of actions, or `No changes.`, and of items refused.
fn summary(plan: &Plan) -> String {
    let (add, change, delete) = plan.counts();
    let summary = if plan.actions.is_empty() {
        "No changes.".to_owned()
    } else {
        format!("Plan: {add} to add, {change} to change, {delete} to delete.")
    };
    let refused = match plan.refused.len() {
        0 => String::new(),
        1 => " 1 item refused.".to_owned(),
        n => format!(" {n} items refused."),
    };
    format!("{summary}{refused}")
}

/// Prints each action of `apply` or `delete` as it finishes (`+ session …: done`), and
/// journals it as theirs.
pub(super) struct Printer {
    /// The journal, when there is a state folder to write it in.
    pub journal: Option<crate::journal::Journal>,
    /// Whether to colour the lines.
    pub color: bool,
    /// Whose actions they are.
    pub origin: crate::journal::Origin,
}

impl crate::controller::round::Watcher for Printer {
    fn acted(&mut self, action: &Action, result: &Result<crate::plan::Outcome, String>) {
        if let Some(j) = self.journal.as_mut() {
            let _ = j.record(crate::journal::Acted::new(
                action,
                result,
                Some(self.origin),
            ));
        }
        let line = format!("{} {action}", action.sign());
        match result {
            Ok(_) => println!("{}", paint(self.color, GREEN, format!("{line}: done"))),
            Err(e) => println!("{}", paint(self.color, RED, format!("{line}: failed: {e}"))),
        }
    }

    fn damaged(&mut self, damage: &Result<crate::state::damage::Damage, crate::state::Error>) {
        match damage {
            Ok(d) => {
                if let Some(j) = self.journal.as_mut() {
                    let _ = j.record(crate::journal::Life::StateDamaged(d.clone()));
                }
                eprintln!("warning: {d}");
            }
            Err(e) => eprintln!("warning: {e}"),
        }
    }
}

/// The plan as JSON: actions, refusals and the counts.
pub(super) fn render_json(plan: &Plan) -> String {
    let (add, change, delete) = plan.counts();
    let value = json!({
        "actions": plan.actions,
        "refused": plan.refused,
        "summary": {"add": add, "change": change, "delete": delete, "refused": plan.refused.len()},
    });
    serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
}

/// A unified diff of the observed world against the desired one, both as YAML: the
/// sessions the manifests or our marks involve, and the shared links.
pub(super) fn render_diff(m: &Manifests, observed: &Observed, plan: &Plan, owner: &str) -> String {
    let mut before: BTreeMap<String, Value> = BTreeMap::new();
    let mut after: BTreeMap<String, Value> = BTreeMap::new();
    for (name, s) in &observed.sessions {
        if s.is_ours(owner) {
            let v = json!({"account": s.account, "state": s.state(owner).to_string()});
            before.insert(format!("session {name}"), v.clone());
            after.insert(format!("session {name}"), v);
        }
    }
    for shared in &m.shared_states {
        for account in &m.accounts {
            for link in &shared.spec.links {
                let path = account.spec.home.join(link);
                let v = match observed.entries.get(&path) {
                    Some(Entry::Link { to, .. }) => json!(to.display().to_string()),
                    Some(Entry::Absent) | None => Value::Null,
                    Some(other) => json!(format!("{other:?}")),
                };
                before.insert(format!("link {}", path.display()), v.clone());
                after.insert(format!("link {}", path.display()), v);
            }
        }
    }
    for action in &plan.actions {
        match action {
            Action::Session(
                SessionAction::CreateSession { session, .. }
                | SessionAction::RestartSession { session, .. }
                | SessionAction::MoveSession { session, .. },
            ) => {
                after.insert(
                    format!("session {}", session.name),
                    json!({"account": session.account, "state": crate::observe::SessionState::Running.to_string()}),
                );
            }
            Action::Session(SessionAction::DeleteSession { name, .. }) => {
                after.remove(&format!("session {name}"));
            }
            Action::Fs(FsAction::CreateLink { link, target }) => {
                after.insert(
                    format!("link {}", link.display()),
                    json!(target.display().to_string()),
                );
            }
            Action::Fs(FsAction::RemoveLink { link, .. }) => {
                after.remove(&format!("link {}", link.display()));
            }
            Action::Fs(
                FsAction::CreateDir { .. }
                | FsAction::ConfigureAgent { .. }
                | FsAction::RestoreSettings { .. }
                | FsAction::EndDaemons { .. },
            )
            | Action::Session(SessionAction::RecycleSession { .. }) => {}
            // Tasks are not part of the world's YAML.
            Action::Task(
                TaskAction::DispatchTask { .. }
                | TaskAction::PasteTask { .. }
                | TaskAction::ContinueTask { .. }
                | TaskAction::SubmitTask { .. }
                | TaskAction::CompleteTask { .. }
                | TaskAction::RequeueTask { .. }
                | TaskAction::RejectTask { .. }
                | TaskAction::StallTask { .. }
                | TaskAction::ReturnTask { .. },
            ) => {}
        }
    }
    let yaml = |map: &BTreeMap<String, Value>| serde_saphyr::to_string(map).unwrap_or_default();
    let (old, new) = (yaml(&before), yaml(&after));
    similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header("observed", "desired")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixtures::*;

    #[test]
    fn render_text_should_sign_actions_and_close_with_counts() {
        let m = manifests(POOL_AND_DEDICATED);
        let mut o = observed();
        add(&mut o, session("orphan", "failover", "main", 9));
        let p = plan(&m, &o, "failover", now());
        let text = render_text(&p, false);
        assert!(text.contains("  + session ccl-auto-11 (pool auto, account main) in /w: claude --dangerously-skip-permissions"), "{text}");
        assert!(
            text.contains("  - session orphan: no manifest wants it (orphan)"),
            "{text}"
        );
        assert!(
            text.ends_with("Plan: 4 to add, 0 to change, 1 to delete.\n"),
            "{text}"
        );
        assert!(!text.contains('\u{1b}'));
        assert!(render_text(&p, true).contains(GREEN));
    }

    #[test]
    fn render_text_should_say_why_sessions_move_to_another_account() {
        let m = manifests(POOL_AND_DEDICATED);
        let mut o = observed();
        add(&mut o, session("ccl-1-x", "failover", "main", 9));
        reported(&mut o, "ccl-1-x", 9);
        o.facts
            .family_mut(crate::api::AgentKind::ClaudeCode)
            .active_account = Some("main".into());
        o.screens.insert(
            "ccl-1-x".into(),
            "> go\n  ⎿  You've hit your 5-hour limit · resets 11pm (UTC)\n────\n❯\u{a0}\n────\n"
                .into(),
        );
        let text = render_text(&plan(&m, &o, "failover", now()), false);
        assert!(
            text.contains("  ~ active account main -> alt: quota exhausted\n      account main read exhausted on ccl-1-x: \"⎿  You've hit your 5-hour limit · resets 11pm (UTC)\", resets 2026-11-21T23:00:00Z\n"),
            "{text}"
        );
        assert!(
            text.contains("  ~ session ccl-1-x: account main -> alt"),
            "{text}"
        );
    }

    #[test]
    fn render_text_should_say_when_sessions_move_before_the_wall_and_the_reading_behind_it() {
        let text = format!(
            "{POOL_AND_DEDICATED}---\napiVersion: failover/v1alpha1\nkind: ControllerConfig\nmetadata: {{name: c}}\nspec: {{quota: {{moveAt: 95}}}}\n"
        );
        let m = manifests(&text);
        let mut o = observed();
        add(&mut o, session("ccl-1-x", "failover", "main", 9));
        reported(&mut o, "ccl-1-x", 9);
        o.screens.insert("ccl-1-x".into(), IDLE_SCREEN.into());
        o.facts
            .family_mut(crate::api::AgentKind::ClaudeCode)
            .active_account = Some("main".into());
        let resets: jiff::Timestamp = "2026-11-21T09:00:00Z".parse().unwrap();
        o.facts
            .usage
            .insert("main".into(), five_hour(96.0, resets, now(), "ccl-1-x"));
        let text = render_text(&plan(&m, &o, "failover", now()), false);
        assert!(
            text.contains("  ~ active account main -> alt: usage 96% reached moveAt 95%\n      account main use, reported by ccl-1-x at 2026-11-21T06:00:00Z: 5h 96% (resets 2026-11-21T09:00:00Z)\n"),
            "{text}"
        );
        assert!(
            text.contains("  ~ session ccl-1-x: account main -> alt"),
            "{text}"
        );
    }

    #[test]
    fn render_text_should_say_no_changes_and_list_refusals() {
        let mut p = Plan::default();
        assert_eq!(render_text(&p, false), "No changes.\n");
        p.refused.push(crate::plan::Refusal {
            object: crate::object::ObjectRef::Path("/h/x".into()),
            reason: "a file is in the way".into(),
        });
        let text = render_text(&p, false);
        assert!(text.contains("  ! /h/x: a file is in the way"), "{text}");
        assert!(text.ends_with("No changes. 1 item refused.\n"), "{text}");
    }

    #[test]
    fn render_json_should_hide_environment_values() {
        let m = manifests(POOL_AND_DEDICATED);
        let p = plan(&m, &observed(), "failover", now());
        let text = render_json(&p);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["summary"]["add"], 4);
        assert_eq!(v["actions"][0]["action"], "createSession");
        let env = &v["actions"][0]["session"]["env"];
        assert!(
            env.as_array()
                .unwrap()
                .contains(&json!("CLAUDE_CONFIG_DIR"))
        );
        assert!(
            !text.contains("/h/main\""),
            "values must not be printed: {text}"
        );
    }

    #[test]
    fn render_diff_should_show_sessions_to_come_and_go() {
        let m = manifests(POOL_AND_DEDICATED);
        let mut o = observed();
        add(&mut o, session("orphan", "failover", "main", 9));
        let p = plan(&m, &o, "failover", now());
        let diff = render_diff(&m, &o, &p, "failover");
        assert!(diff.contains("--- observed"), "{diff}");
        assert!(diff.contains("+session ccl-auto-11:"), "{diff}");
        assert!(diff.contains("-session orphan:"), "{diff}");
    }
}
