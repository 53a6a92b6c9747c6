//! Operator actions (being written).
