//! Bounded SPSC mesh between workers.
