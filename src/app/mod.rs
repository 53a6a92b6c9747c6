//! The cockpit: state, messages, the reducer, and the runtime that does the IO.

pub mod runtime;
pub mod state;
pub mod update;
