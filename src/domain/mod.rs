//! The pure core: no tokio, no IO, no terminal. Time is always passed in.

pub mod actions;
pub mod assign;
pub mod event;
pub mod freeze;
pub mod gates;
pub mod guard;
pub mod health;
pub mod patch;
pub mod progression;
pub mod rollout;
pub mod text;
pub mod units;
