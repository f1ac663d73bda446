//! uring-rt: the thread-per-core io_uring runtime under the riptide trackers.
