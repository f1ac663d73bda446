//! CPU pinning: which cores the workers run on.

use crate::config::CpuPinningConfig;
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// The cores in this process's affinity mask, in ascending order.
pub fn allowed_cores() -> Vec<usize> {
    let Ok(set) = sched_getaffinity(Pid::from_raw(0)) else {
        return vec![0];
    };
    let cores: Vec<usize> = (0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect();
    if cores.is_empty() {
        vec![0]
    } else {
        cores
    }
}

/// The worker count to use: `configured`, or one per allowed core when 0.
pub fn worker_count(configured: usize) -> usize {
    if configured == 0 {
        allowed_cores().len()
    } else {
        configured
    }
}

/// The core each worker is pinned to, `None` when pinning is off.
/// Worker i gets the (i mod n)-th core of the configured list (or of the
/// process affinity mask when the list is empty).
pub fn worker_cores(config: &CpuPinningConfig) -> Option<Vec<usize>> {
    if !config.enabled {
        return None;
    }
    Some(if config.cores.is_empty() {
        allowed_cores()
    } else {
        config.cores.clone()
    })
}

/// Pins the calling thread to `core`.
pub fn pin_current_thread(core: usize) -> nix::Result<()> {
    let mut set = CpuSet::new();
    set.set(core)?;
    sched_setaffinity(Pid::from_raw(0), &set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinning_a_thread_restricts_its_mask() {
        let core = *allowed_cores().last().unwrap();
        std::thread::spawn(move || {
            pin_current_thread(core).unwrap();
            assert_eq!(allowed_cores(), vec![core]);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn defaults_follow_the_affinity_mask() {
        assert_eq!(worker_count(0), allowed_cores().len());
        assert_eq!(worker_count(3), 3);
        assert_eq!(worker_cores(&CpuPinningConfig::default()), None);
        let on = CpuPinningConfig {
            enabled: true,
            cores: vec![],
        };
        assert_eq!(worker_cores(&on), Some(allowed_cores()));
    }
}
