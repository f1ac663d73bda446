//! riptide-http binary.
fn main() {}
