//! Safe socket set-up and batch syscalls.
