//! Reading every screen of ours once per plan: the ledger (quota) and the task rules
//! (idle, busy, input) share the readings.

use std::collections::BTreeMap;

use super::Context;
use crate::api::Manifests;
use crate::observe::Observed;
use crate::screen::{self, Verdict};

/// One screen, read.
#[derive(Debug, Clone)]
pub(super) struct Reading {
    /// The full verdict (quota, errors, reset time).
    pub verdict: Verdict,
    /// The input box is drawn and empty.
    pub empty_input: bool,
    /// For a quota reading: the turn's prompt and the deciding line. A resumed
    /// conversation redraws both.
    pub quota_mark: Option<String>,
    /// [`screen_hash`] of the screen.
    pub hash: u64,
}

/// A hash of what a screen says, digits left out: a spinner's running timer or token
/// count is not progress, so a hung turn still reads as unchanged.
/// Stable across builds: it is kept in the facts across restarts and upgrades.
pub(super) fn screen_hash(text: &str) -> u64 {
    crate::state::hash::stable_hash(text.bytes().filter(|b| !b.is_ascii_digit()))
}

/// The readings of the live agent panes of our sessions that have a screen, by session.
pub(super) fn read_screens(
    m: &Manifests,
    o: &Observed,
    ctx: &Context,
) -> BTreeMap<String, Reading> {
    let local = ctx.local();
    let mut out = BTreeMap::new();
    for (name, s) in &o.sessions {
        if !s.is_live_ours(ctx.owner) {
            continue;
        }
        let Some(text) = o.screens.get(name) else {
            continue;
        };
        // Every profile's classifier compiled when the manifests were adopted.
        let Some(c) = ctx.classifiers.of_session(m, name, s.account.as_deref()) else {
            continue;
        };
        let verdict = c.read(text, &local);
        let quota_mark = (verdict.class == screen::Class::QuotaExhausted).then(|| {
            let turn = verdict.turn.as_deref().unwrap_or_default();
            format!("{turn}\n{}", verdict.line.as_deref().unwrap_or_default())
        });
        out.insert(
            name.clone(),
            Reading {
                quota_mark,
                hash: screen_hash(text),
                verdict,
                empty_input: screen::input(text, c.patterns()).is_some_and(|i| i.is_empty()),
            },
        );
    }
    out
}
