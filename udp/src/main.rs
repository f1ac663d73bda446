//! riptide-udp binary.
fn main() {}
