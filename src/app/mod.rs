//! The cockpit: state, messages, the reducer, and the runtime that does the IO.

pub mod runtime;
mod sgr;
pub mod state;
pub mod update;
