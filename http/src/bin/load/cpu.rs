//! CPU accounting, shared with riptide-ws-load: see
//! [`riptide_common::loadgen`].

pub(crate) use riptide_common::loadgen::{
    process_cpu as process, this_thread_cpu as this_thread, CpuTime,
};
