//! Shared test harnesses.
#![allow(dead_code)]

pub mod conformance;
pub mod emulator;
