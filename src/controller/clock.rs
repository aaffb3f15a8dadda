//! Telling a jump of the wall clock from time passing: between two rounds the wall
//! clock moved by more, or less, than the monotonic clock. A jump moves the facts'
//! instants with it (see [`crate::state::Facts::shift`]) and is journaled once.
//!
//! The monotonic clock stops while the machine sleeps: waking reads as a jump forward
//! by the time slept, and the controller's timers do not count it (its agents slept
//! too).

use std::time::Instant;

use jiff::{SignedDuration, Timestamp};

/// The smallest difference taken for a jump: a round's own time and the clock's
/// slewing stay far below it.
const JUMP: SignedDuration = SignedDuration::from_secs(2);

/// The two clocks as the last round read them.
#[derive(Debug, Default)]
pub(super) struct WallClock {
    last: Option<(Instant, Timestamp)>,
}

impl WallClock {
    /// Reads the clocks (`mono`, `wall`): by how much the wall clock jumped since the
    /// last reading, if it did.
    pub(super) fn jumped(&mut self, mono: Instant, wall: Timestamp) -> Option<SignedDuration> {
        let (m0, w0) = self.last.replace((mono, wall))?;
        let passed = SignedDuration::try_from(mono.saturating_duration_since(m0)).ok()?;
        let by = wall.duration_since(w0).checked_sub(passed)?;
        (by.abs() >= JUMP).then_some(by)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn time_passing_on_both_clocks_should_be_no_jump() {
        let (m, w) = (Instant::now(), Timestamp::now());
        let mut c = WallClock::default();
        assert_eq!(c.jumped(m, w), None, "the first reading");
        let later = Duration::from_secs(600);
        assert_eq!(
            c.jumped(m + later, w + SignedDuration::from_millis(600_500)),
            None,
            "half a second of slewing over ten minutes"
        );
    }

    #[test]
    fn a_wall_clock_ahead_or_behind_the_monotonic_one_should_be_a_jump_by_the_difference() {
        let (m, w) = (Instant::now(), Timestamp::now());
        let mut c = WallClock::default();
        c.jumped(m, w);
        let m = m + Duration::from_secs(1);
        let w = w + SignedDuration::from_hours(2) + SignedDuration::from_secs(1);
        assert_eq!(c.jumped(m, w), Some(SignedDuration::from_hours(2)));
        let m = m + Duration::from_secs(1);
        let w = w + SignedDuration::from_secs(1) - SignedDuration::from_mins(10);
        assert_eq!(c.jumped(m, w), Some(SignedDuration::from_mins(-10)));
        // Measured from the last reading: the jump is told once.
        assert_eq!(
            c.jumped(m + Duration::from_secs(1), w + SignedDuration::from_secs(1)),
            None
        );
    }
}
