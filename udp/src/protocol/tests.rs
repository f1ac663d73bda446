//! Protocol tests: known vectors, round trips, no panics.
