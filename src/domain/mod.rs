//! The pure core: no tokio, no IO, no terminal. Time is always passed in.

pub mod actions;
pub mod assign;
pub mod event;
pub mod health;
pub mod patch;
pub mod progression;
pub mod rollout;
pub mod units;
