//! The cockpit's "now": the wall clock, or in a demo the simulator's compressed clock, so
//! a 10-minute stage passes in seconds and auto-progression can be watched end to end.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::metrics::MetricsSource;

#[derive(Clone)]
pub enum Clock {
    Wall,
    /// The simulator behind this source sets the time (demo only: every timestamp the
    /// cockpit writes is then simulated time, which only a private demo store may hold).
    Simulated(Arc<dyn MetricsSource>),
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::Wall => Utc::now(),
            Clock::Simulated(source) => source.simulator().map_or_else(Utc::now, |s| s.now()),
        }
    }

    /// Simulated seconds per real second (1 on the wall clock).
    pub fn rate(&self) -> f64 {
        match self {
            Clock::Wall => 1.0,
            Clock::Simulated(source) => source.simulator().map_or(1.0, |s| s.time_compression()),
        }
    }
}
