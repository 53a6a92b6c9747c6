//! Progression (being written).
