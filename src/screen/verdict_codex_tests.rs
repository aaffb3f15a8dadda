//! Codex's screens, as 0.171.0 drew them in a 120-column tmux pane against a mock of
//! the Responses API (docs/agent-families.md), and the wordings of every plan's limit
//! (openai/codex `codex-rs/protocol/src/error.rs`).

use super::*;

const HEAD: &str = "  >_ OpenAI Codex (v0.171.0)\n     /srv/work\n  permissions: YOLO mode\n\n› fix the bug\n\n• Done.\n\n  Worked for <1s • 02:06\n\n";
const INPUT: &str = "\n› Ask Codex to do anything\n\n  mock-model default · /srv/work · fix the bug\n  ← for agents · ? for shortcuts                                                              ⚠ 2 warnings · f2 to view\n";

fn codex() -> Classifier {
    Classifier::new(&ScreenPatterns::of(&crate::agents::codex::DEFAULTS.screen)).unwrap()
}

/// 07:00 in Berlin (06:00 UTC): Codex prints reset times in the local zone.
fn now() -> Local {
    Local {
        now: "2026-11-21T07:00:00+01:00[Europe/Berlin]".parse().unwrap(),
        zones: jiff::tz::db().clone(),
    }
}

fn read(turn: &str) -> Verdict {
    codex().read(&format!("{HEAD}{turn}{INPUT}"), &now())
}

#[test]
fn codex_screens_should_read_idle_busy_and_starting() {
    let idle = read("");
    assert_eq!((idle.class, idle.state), (Class::Idle, State::Idle));
    assert_eq!(
        crate::screen::input(&format!("{HEAD}{INPUT}"), codex().patterns()).as_deref(),
        Some(""),
        "the placeholder is an empty input"
    );
    let typed = format!(
        "{HEAD}{}",
        INPUT.replace("Ask Codex to do anything", "second task")
    );
    assert_eq!(
        crate::screen::input(&typed, codex().patterns()).as_deref(),
        Some("second task")
    );
    let busy = read("› second task\n\n• Working (2s • esc to interrupt)\n");
    assert_eq!(busy.class, Class::Busy);
    // The glyph blinks (0.171.0 draws `•` and `◦` by turns) and a reasoning summary
    // may stand for `Working`: each is busy, never idle.
    for line in [
        "◦ Working (3s • esc to interrupt)",
        "• Planning the parser change (12s • esc to interrupt)",
    ] {
        let busy = read(&format!("› second task\n\n{line}\n"));
        assert_eq!(busy.class, Class::Busy, "{line}");
    }
    // The animated logo before the input line is drawn: not idle.
    let logo = "  >_ OpenAI Codex (v0.171.0)\n     /srv/work\n\n   ⣀⣤⣤⣤⣀⣀\n ⣠⣶⣿⣿⣿⣿⣿⣿⣿⣿⣦\n";
    assert_eq!(codex().read(logo, &now()).class, Class::Unknown);
    // `loading` under the banner with the input line drawn already (the real capture):
    // not ready for a task, which a paste then would miss.
    let loading = include_str!("../../tests/fixtures/codex/starting.txt");
    assert_ne!(codex().read(loading, &now()).state, State::Idle);
    let ready = include_str!("../../tests/fixtures/codex/idle.txt");
    assert_eq!(codex().read(ready, &now()).state, State::Idle);
}

#[test]
fn codex_dialogs_should_read_as_waiting() {
    for dialog in [
        "  You are running Codex in /srv/work\n\n  Do you trust the contents of this directory? Working with untrusted contents comes with higher risk of prompt injection.\n\n› 1. Yes, continue\n  2. No, quit\n",
        "  Approaching rate limits\n  Switch to gpt-5.1-codex-mini for lower credit usage?\n\n› 1. Switch to gpt-5.1-codex-mini\n  2. Keep current model\n",
    ] {
        assert_eq!(
            codex().read(dialog, &now()).class,
            Class::Waiting,
            "{dialog}"
        );
    }
}

#[test]
fn every_plans_usage_limit_should_read_as_quota_across_a_wrapped_line() {
    let cases = [
        // Plus, as drawn (wrapped at 120 columns, the rest at the first column).
        (
            "■ You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/settings/\nusage to purchase more credits or try again at 10:07 AM.\n",
            Some("2026-11-21T09:07:00Z"),
        ),
        // The reset time itself wrapped onto the next line.
        (
            "■ You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/settings/usage to purchase more credits or try again\nat 10:07 AM.\n",
            Some("2026-11-21T09:07:00Z"),
        ),
        (
            "■ You’ve hit your usage limit. Visit https://chatgpt.com/codex/settings/usage to purchase more credits or try again at Dec 5th, 2026 3:53 PM.\n",
            Some("2026-12-05T14:53:00Z"),
        ),
        (
            "■ You’ve hit your usage limit. To get more access now, send a request to your admin or try again at 3:28 PM.\n",
            Some("2026-11-21T14:28:00Z"),
        ),
        (
            "■ You’ve hit your usage limit. Upgrade to Plus to continue using Codex (https://chatgpt.com/explore/plus), or try again at Aug 8th, 2027 12:30 PM.\n",
            Some("2027-08-08T10:30:00Z"),
        ),
        (
            "■ You’ve hit your usage limit. Try again at 10:07 AM.\n",
            Some("2026-11-21T09:07:00Z"),
        ),
        ("■ You’ve hit your usage limit. Try again later.\n", None),
        (
            "■ You've hit your usage limit for GPT-5.3-Codex-Spark. Switch to another model now, or try again at 10:07 AM.\n",
            Some("2026-11-21T09:07:00Z"),
        ),
    ];
    for (body, reset) in cases {
        let v = read(&format!("› third task\n{body}"));
        assert_eq!(v.class, Class::QuotaExhausted, "{body}");
        assert_eq!(
            v.resets_at.map(|t| t.to_string()).as_deref(),
            reset,
            "{body}"
        );
    }
}

#[test]
fn codex_errors_that_are_no_plan_limit_should_never_read_as_quota() {
    for body in [
        "■ Selected model is at capacity. Please try a different model.\n",
        "■ We're currently experiencing high demand, which may cause temporary errors.\n",
        "■ Quota exceeded. Check your plan and billing details.\n",
    ] {
        let v = read(&format!("› third task\n{body}"));
        assert_eq!(v.class, Class::ServerError, "{body}");
    }
    // The person's prompt and the agent's prose about limits are not the agent's error.
    let v = read(
        "› what does \"You’ve hit your usage limit\" mean?\n\n• It is what Codex prints when You’ve hit your usage limit.\n",
    );
    assert_eq!(v.class, Class::Idle);
}

#[test]
fn only_the_current_codex_turn_should_count() {
    let limit = "› third task\n■ You’ve hit your usage limit. Try again at 10:07 AM.\n";
    let carried = format!("{limit}\n› continue (now under account b)\n\n• Done.\n");
    assert_eq!(read(&carried).class, Class::Idle);
    let running =
        format!("{limit}\n› continue (now under account b)\n\n• Working (0s • esc to interrupt)\n");
    assert_eq!(read(&running).class, Class::Busy);
}

#[test]
fn a_codex_limit_message_should_read_as_quota_with_its_reset() {
    let (class, reset) = codex().read_limit(
        "You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/settings/usage to purchase more credits or try again at 10:07 AM.",
        &now(),
    );
    assert_eq!(class, Class::QuotaExhausted);
    assert_eq!(reset.unwrap().to_string(), "2026-11-21T09:07:00Z");
}
