//! riptide-udp: the UDP tracker (BEP 15, BEP 41).
