//! riptide-ws binary.
fn main() {}
