//! Placeholder replaced by the assignment implementation.
