//! riptide-udp-load binary.
fn main() {}
