//! Dropping root after the sockets are bound.

use crate::config::PrivilegesConfig;
use anyhow::{bail, Context};
use nix::unistd::{chdir, chroot, getgid, getuid, setgid, setgroups, setuid, User};

/// Switches the whole process to the configured user (and its primary
/// group), after an optional chroot. Does nothing when `drop` is false.
///
/// Call it after every socket is bound and every file the tracker needs is
/// open. Any failure is an error the caller must treat as fatal: running as
/// root when the operator asked otherwise is not an option.
pub fn drop_privileges(config: &PrivilegesConfig) -> anyhow::Result<()> {
    if !config.drop {
        return Ok(());
    }
    let user = User::from_name(&config.user)
        .with_context(|| format!("look up user {:?} (privileges.user)", config.user))?
        .with_context(|| format!("no such user {:?} (privileges.user)", config.user))?;
    if !config.chroot.as_os_str().is_empty() {
        chroot(&config.chroot).with_context(|| {
            format!("chroot to {} (privileges.chroot)", config.chroot.display())
        })?;
        chdir("/").context("chdir / after chroot")?;
    }
    setgroups(&[user.gid]).context("setgroups")?;
    setgid(user.gid).with_context(|| format!("setgid {}", user.gid))?;
    setuid(user.uid).with_context(|| format!("setuid {}", user.uid))?;
    if getuid() != user.uid || getgid() != user.gid {
        bail!("privilege drop to {} did not take effect", config.user);
    }
    if setuid(nix::unistd::Uid::from_raw(0)).is_ok() && user.uid.as_raw() != 0 {
        bail!(
            "privilege drop to {} is reversible: regained root",
            config.user
        );
    }
    log::info!(
        "dropped privileges to user {} (uid {}, gid {})",
        config.user,
        user.uid,
        user.gid
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const CHILD: &str = "RIPTIDE_PRIVILEGES_CHILD";

    /// Runs in a child process of the test binary, since a privilege drop
    /// cannot be undone and the other tests share this process.
    #[test]
    fn child_drops_to_nobody() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        let config = PrivilegesConfig {
            drop: true,
            ..PrivilegesConfig::default()
        };
        drop_privileges(&config).unwrap();
        let nobody = User::from_name("nobody").unwrap().unwrap();
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        let gid_line = status.lines().find(|l| l.starts_with("Gid:")).unwrap();
        // real, effective, saved and fs ids all changed.
        for id in uid_line.split_whitespace().skip(1) {
            assert_eq!(id, nobody.uid.to_string(), "{uid_line}");
        }
        for id in gid_line.split_whitespace().skip(1) {
            assert_eq!(id, nobody.gid.to_string(), "{gid_line}");
        }
        println!("DROPPED-OK");
    }

    #[test]
    fn drop_to_nobody_from_root() {
        if !getuid().is_root() {
            eprintln!("skipped: needs root to test a privilege drop");
            return;
        }
        let exe = std::env::current_exe().unwrap();
        let out = Command::new(exe)
            .args([
                "--exact",
                "privileges::tests::child_drops_to_nobody",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("DROPPED-OK"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn unknown_user_is_an_error() {
        let config = PrivilegesConfig {
            drop: true,
            user: "no-such-user-riptide".into(),
            ..PrivilegesConfig::default()
        };
        let err = drop_privileges(&config).unwrap_err();
        assert!(format!("{err:#}").contains("no-such-user-riptide"));
    }
}
