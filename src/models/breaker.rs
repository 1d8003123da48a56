//! A circuit breaker for one model server: after [`FAILURES_TO_OPEN`]
//! failures in a row it stops asking for [`OPEN_FOR`], then lets one probe
//! through (half-open); the probe's success closes it, its failure opens it
//! again. It logs once when it opens and once when it closes. Time comes from
//! the injected clock, so tests move it instead of sleeping.

use std::sync::Mutex;
use std::time::Duration;

use crate::clock::{SharedClock, duration_ms};

/// Consecutive failures that open the breaker.
pub const FAILURES_TO_OPEN: u32 = 3;
/// How long an open breaker refuses calls before one probe.
pub const OPEN_FOR: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until_ms: u64,
    },
    /// One probe is out; other calls are refused until it ends.
    HalfOpen,
}

#[derive(Debug)]
pub(crate) struct Breaker {
    name: &'static str,
    clock: SharedClock,
    state: Mutex<State>,
}

impl Breaker {
    pub(crate) fn new(name: &'static str, clock: SharedClock) -> Breaker {
        Breaker {
            name,
            clock,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a call may go out now.
    pub(crate) fn allow(&self) -> bool {
        let mut state = self.state();
        match *state {
            State::Closed { .. } => true,
            State::Open { until_ms } if self.clock.now_ms() >= until_ms => {
                *state = State::HalfOpen;
                true
            }
            State::Open { .. } | State::HalfOpen => false,
        }
    }

    pub(crate) fn success(&self) {
        let mut state = self.state();
        if !matches!(*state, State::Closed { .. }) {
            tracing::info!(
                server = self.name,
                "model server answers again: breaker closed"
            );
        }
        *state = State::Closed { failures: 0 };
    }

    pub(crate) fn failure(&self) {
        let mut state = self.state();
        let until_ms = self.clock.now_ms().saturating_add(duration_ms(OPEN_FOR));
        match *state {
            State::Closed { failures } if failures + 1 >= FAILURES_TO_OPEN => {
                tracing::warn!(
                    server = self.name,
                    failures = failures + 1,
                    "model server failing: breaker open, the rules answer alone for {}s",
                    OPEN_FOR.as_secs()
                );
                *state = State::Open { until_ms };
            }
            State::Closed { failures } => {
                *state = State::Closed {
                    failures: failures + 1,
                }
            }
            // A failed probe: still open, not logged again.
            State::Open { .. } | State::HalfOpen => *state = State::Open { until_ms },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn opens_after_failures_and_closes_after_a_probe() {
        let clock = ManualClock::new(1_000_000);
        let breaker = Breaker::new("test", clock.clone());
        for _ in 0..FAILURES_TO_OPEN {
            assert!(breaker.allow());
            breaker.failure();
        }
        assert!(!breaker.allow());
        clock.advance(OPEN_FOR);
        assert!(breaker.allow(), "half-open: one probe");
        assert!(!breaker.allow(), "only one probe at a time");
        breaker.failure();
        assert!(!breaker.allow(), "a failed probe opens it again");
        clock.advance(OPEN_FOR);
        assert!(breaker.allow());
        breaker.success();
        assert!(breaker.allow() && breaker.allow());
    }
}
