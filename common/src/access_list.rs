//! The access list: which info hashes a tracker serves.
//!
//! The list is parsed from a file of hex hashes and published through an
//! [`ArcSwap`], so a reload (on SIGUSR1) replaces it atomically while workers
//! keep reading; each worker reads through an [`AccessCache`], one atomic
//! load per check.

use crate::config::{AccessListConfig, AccessListMode};
use crate::InfoHash;
use arc_swap::{ArcSwap, Cache};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

/// A line of the access list file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AccessListError {
    /// The file could not be read.
    #[error("cannot read access list {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not a 40- or 64-digit hex hash.
    #[error(
        "access list {path}, line {line}: {text:?} is not a 40-hex (v1) or 64-hex (v2) info hash"
    )]
    BadLine {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// The offending text (cut to 80 characters).
        text: String,
    },
}

/// One loaded access list: a mode and a set of hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessList {
    mode: AccessListMode,
    hashes: HashSet<InfoHash>,
}

impl AccessList {
    /// A list that lets every hash through.
    pub fn off() -> Self {
        Self {
            mode: AccessListMode::Off,
            hashes: HashSet::new(),
        }
    }

    /// Parses file text: one hex hash per line, `#` comments, blank lines.
    /// 64-hex (v2, SHA-256) hashes are truncated to their first 20 bytes, as
    /// BEP 52 clients announce them.
    pub fn parse(mode: AccessListMode, text: &str, path: &str) -> Result<Self, AccessListError> {
        let mut hashes = HashSet::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let bad = || AccessListError::BadLine {
                path: path.to_string(),
                line: i + 1,
                text: raw.chars().take(80).collect(),
            };
            if line.len() != 40 && line.len() != 64 {
                return Err(bad());
            }
            let mut hash = [0u8; 20];
            hex::decode_to_slice(&line[..40], &mut hash).map_err(|_| bad())?;
            if line.len() == 64 && hex::decode(&line[40..]).is_err() {
                return Err(bad());
            }
            hashes.insert(InfoHash(hash));
        }
        Ok(Self { mode, hashes })
    }

    /// Loads the list the config names (an empty `off` list when mode is off).
    pub fn load(config: &AccessListConfig) -> Result<Self, AccessListError> {
        if config.mode == AccessListMode::Off {
            return Ok(Self::off());
        }
        let path = config.path.display().to_string();
        let text = std::fs::read_to_string(Path::new(&config.path)).map_err(|source| {
            AccessListError::Read {
                path: path.clone(),
                source,
            }
        })?;
        Self::parse(config.mode, &text, &path)
    }

    /// Whether requests for `hash` are served.
    #[inline]
    pub fn allows(&self, hash: &InfoHash) -> bool {
        match self.mode {
            AccessListMode::Off => true,
            AccessListMode::Allow => self.hashes.contains(hash),
            AccessListMode::Deny => !self.hashes.contains(hash),
        }
    }

    /// Number of hashes listed.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether no hash is listed.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }
}

/// The process-wide access list, swapped atomically on reload.
#[derive(Debug, Clone)]
pub struct SharedAccessList {
    current: Arc<ArcSwap<AccessList>>,
    config: AccessListConfig,
}

impl SharedAccessList {
    /// Loads the configured list; at start-up a bad file is fatal (the error
    /// names the line).
    pub fn load(config: &AccessListConfig) -> Result<Self, AccessListError> {
        let list = AccessList::load(config)?;
        Ok(Self {
            current: Arc::new(ArcSwap::from_pointee(list)),
            config: config.clone(),
        })
    }

    /// Re-reads the file. On error the old list stays and the error is
    /// returned for the caller to log.
    pub fn reload(&self) -> Result<usize, AccessListError> {
        let list = AccessList::load(&self.config)?;
        let n = list.len();
        self.current.store(Arc::new(list));
        Ok(n)
    }

    /// Re-reads the file and logs the outcome (for signal handlers).
    pub fn reload_and_log(&self) {
        match self.reload() {
            Ok(n) => log::info!(
                "access list reloaded: {n} hashes, mode {:?}",
                self.config.mode
            ),
            Err(e) => log::error!("access list reload failed, keeping the previous list: {e}"),
        }
    }

    /// A per-worker reader: each check is one atomic load.
    pub fn cache(&self) -> AccessCache {
        AccessCache(Cache::new(Arc::clone(&self.current)))
    }
}

/// A worker's view of the [`SharedAccessList`].
pub struct AccessCache(Cache<Arc<ArcSwap<AccessList>>, Arc<AccessList>>);

impl AccessCache {
    /// Whether requests for `hash` are served under the current list.
    #[inline]
    pub fn allows(&mut self, hash: &InfoHash) -> bool {
        self.0.load().allows(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "0123456789abcdef0123456789ABCDEF01234567";
    const V2: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

    fn h(hex_str: &str) -> InfoHash {
        let mut b = [0u8; 20];
        hex::decode_to_slice(&hex_str[..40], &mut b).unwrap();
        InfoHash(b)
    }

    #[test]
    fn parses_v1_v2_comments_and_blank_lines() {
        let text = format!("# header\n\n{V1}\n  {V2}  # v2, truncated\n");
        let list = AccessList::parse(AccessListMode::Allow, &text, "t").unwrap();
        assert_eq!(list.len(), 2);
        assert!(list.allows(&h(V1)));
        assert!(list.allows(&h(V2)));
        assert!(!list.allows(&InfoHash([0; 20])));
        let deny = AccessList::parse(AccessListMode::Deny, &text, "t").unwrap();
        assert!(!deny.allows(&h(V1)));
        assert!(deny.allows(&InfoHash([0; 20])));
    }

    #[test]
    fn bad_line_is_named() {
        let text = format!("{V1}\nnot-a-hash\n");
        let err = AccessList::parse(AccessListMode::Allow, &text, "list.txt").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("line 2") && msg.contains("not-a-hash") && msg.contains("list.txt"),
            "{msg}"
        );
        for bad in [
            "abc",
            &V1[..39],
            &format!("{V1}0"),
            &V1.replace('0', "g"),
            &V2.replace('f', "x"),
        ] {
            assert!(
                AccessList::parse(AccessListMode::Allow, bad, "t").is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn reload_swaps_and_a_bad_file_keeps_the_old_list() {
        let dir = std::env::temp_dir().join(format!("riptide-al-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("list");
        std::fs::write(&path, format!("{V1}\n")).unwrap();
        let config = AccessListConfig {
            mode: AccessListMode::Allow,
            path: path.clone(),
        };
        let shared = SharedAccessList::load(&config).unwrap();
        let mut cache = shared.cache();
        assert!(cache.allows(&h(V1)));
        assert!(!cache.allows(&h(V2)));

        std::fs::write(&path, format!("{V2}\n")).unwrap();
        assert_eq!(shared.reload().unwrap(), 1);
        assert!(!cache.allows(&h(V1)));
        assert!(cache.allows(&h(V2)));

        std::fs::write(&path, "garbage\n").unwrap();
        assert!(shared.reload().is_err());
        assert!(cache.allows(&h(V2)), "old list stays after a failed reload");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
