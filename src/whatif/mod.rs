//! What-if runs of auto-progression: `backtest` replays recorded traffic (a trace or a
//! metrics source's history), `simulate` runs many seeded rollouts on modelled traffic.
//! Both go through `replay`, which runs the driver's own rule on a virtual clock.

pub mod backtest;
pub mod history;
pub mod replay;
pub mod simulate;
pub mod trace;
pub mod traffic;
