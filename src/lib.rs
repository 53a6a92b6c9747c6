//! rollout-tui: a terminal cockpit for progressive rollouts.
//!
//! `domain` is pure (no IO, time passed in); `store` persists rollout documents;
//! `cli` and `config` are the headless front end; `present` holds the words, labels and
//! formats every front end shows.

pub mod actuator;
pub mod app;
pub mod backoff;
pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod domain;
pub mod engine;
pub mod keys;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod ops;
pub mod present;
pub mod report;
pub mod store;
pub mod ui;
pub mod whatif;
