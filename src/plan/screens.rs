//! Reading every screen of ours once per plan: the ledger (quota) and the task rules
//! (idle, busy, input) share the readings.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::{Timestamp, Zoned};

use crate::api::Manifests;
use crate::observe::Observed;
use crate::screen::{self, Classifier, Verdict};

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
    crate::state::stable_hash(text.bytes().filter(|b| !b.is_ascii_digit()))
}

/// The readings of the live agent panes of our sessions that have a screen, by session.
pub(super) fn read_screens(
    m: &Manifests,
    o: &Observed,
    owner: &str,
    now: Timestamp,
) -> BTreeMap<String, Reading> {
    let local = Zoned::new(now, jiff::tz::TimeZone::system());
    let mut classifiers: BTreeMap<&str, Option<Arc<Classifier>>> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (name, s) in &o.sessions {
        if !s.is_live_ours(owner) {
            continue;
        }
        let Some(text) = o.screens.get(name) else {
            continue;
        };
        let agent = m.agent_of(name).unwrap_or(crate::api::BUILTIN_AGENT);
        let classifier = classifiers
            .entry(agent)
            .or_insert_with(|| Classifier::cached(&m.agent(agent)?.spec.screen));
        let Some(c) = classifier else { continue };
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
