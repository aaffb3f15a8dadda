//! Capturing agents' screens, only those that changed. tmux stamps each window with the
//! second of its last output (`#{window_activity}`, carried by the pane listing): a pane
//! whose window had no output since the second its last capture was taken still shows
//! that capture, which is given again without asking tmux. A respawned pane (another
//! pid) is captured afresh, and every capture is taken again at least every
//! [`MAX_AGE`] seconds whatever the stamps say. A steady state of idle agents captures
//! nothing; one agent drawing captures one pane.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Cmd, Error};

/// What a pipelined batch of command lines answers: per line, its blocks' lines.
type Answers = Vec<Result<Vec<Vec<String>>, Error>>;

/// A capture is taken again at least this often, in seconds.
pub const MAX_AGE: u64 = 30;

/// A pane whose screen is wanted, as `list-panes` showed it.
#[derive(Debug, Clone, Copy)]
pub struct PaneRef<'a> {
    /// `%N`.
    pub id: &'a str,
    /// The pid of its process: another pid is another screen.
    pub pid: u32,
    /// `#{window_activity}`: the second of its window's last output.
    pub activity: u64,
}

/// The last capture of each pane, kept by the connection.
#[derive(Debug, Default)]
pub(super) struct Cache {
    entries: Mutex<HashMap<String, Entry>>,
    taken: AtomicU64,
}

#[derive(Debug)]
struct Entry {
    pid: u32,
    /// The second (wall clock, floored) just before the capture was asked for.
    at: u64,
    text: String,
}

impl Entry {
    /// Whether this capture still shows `pane` at second `now`.
    fn shows(&self, pane: &PaneRef<'_>, now: u64) -> bool {
        self.pid == pane.pid && pane.activity < self.at && now >= self.at && now - self.at < MAX_AGE
    }
}

impl Cache {
    /// The visible screens of `panes`, in order (`None` for a pane tmux could not
    /// capture); only the panes that changed since their last capture are captured, by
    /// one `pipeline` of `capture-pane` lines. Captures of panes not in `panes` are
    /// forgotten.
    pub(super) async fn screens<F, Fut>(
        &self,
        panes: &[PaneRef<'_>],
        pipeline: F,
    ) -> Result<Vec<Option<String>>, Error>
    where
        F: FnOnce(Vec<Vec<Cmd>>) -> Fut,
        Fut: Future<Output = Result<Answers, Error>>,
    {
        let now = super::listing::wall_second();
        let mut out: Vec<Option<String>> = vec![None; panes.len()];
        let mut stale = Vec::new();
        {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            let wanted: std::collections::HashSet<&str> = panes.iter().map(|p| p.id).collect();
            entries.retain(|id, _| wanted.contains(id.as_str()));
            for (i, pane) in panes.iter().enumerate() {
                match entries.get(pane.id) {
                    Some(e) if e.shows(pane, now) => out[i] = Some(e.text.clone()),
                    Some(_) | None => stale.push(i),
                }
            }
        }
        if stale.is_empty() {
            return Ok(out);
        }
        let lines: Vec<Vec<Cmd>> = stale
            .iter()
            .map(|&i| vec![Cmd::new("capture-pane").args(["-p", "-t", panes[i].id])])
            .collect();
        let answers = pipeline(lines).await?;
        self.taken.fetch_add(stale.len() as u64, Ordering::Relaxed);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        for (i, answer) in stale.into_iter().zip(answers) {
            let Some(text) = answer.ok().and_then(|mut blocks| blocks.pop()) else {
                entries.remove(panes[i].id);
                continue;
            };
            let text = text.join("\n");
            entries.insert(
                panes[i].id.to_owned(),
                Entry {
                    pid: panes[i].pid,
                    at: now,
                    text: text.clone(),
                },
            );
            out[i] = Some(text);
        }
        Ok(out)
    }

    /// How many panes were captured so far.
    pub(super) fn taken(&self) -> u64 {
        self.taken.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pid: u32, at: u64) -> Entry {
        Entry {
            pid,
            at,
            text: String::new(),
        }
    }

    fn pane(pid: u32, activity: u64) -> PaneRef<'static> {
        PaneRef {
            id: "%1",
            pid,
            activity,
        }
    }

    #[test]
    fn a_capture_should_stand_only_while_nothing_was_drawn_since_its_second() {
        let e = entry(7, 100);
        assert!(e.shows(&pane(7, 99), 100), "quiet since before the capture");
        assert!(e.shows(&pane(7, 99), 129));
        assert!(
            !e.shows(&pane(7, 100), 101),
            "output in the capture's second"
        );
        assert!(!e.shows(&pane(7, 105), 106), "output after the capture");
        assert!(!e.shows(&pane(8, 99), 101), "a respawned pane");
        assert!(!e.shows(&pane(7, 99), 130), "too old");
        assert!(!e.shows(&pane(7, 50), 99), "the clock went back");
    }
}
