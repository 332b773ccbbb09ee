//! File modes of the data directory: everything the server writes (server database, engine
//! stores, sandbox state, temporary media files) is readable by its owner only, whatever the
//! umask it was started with. The server database holds webhook secrets (which must stay
//! usable to sign deliveries, so they cannot be hashed) and the installation's link-signing
//! key and OTP pepper; session tokens are kept as SHA-256 hashes and API keys are not stored.
//!
//! Two layers: [`restrict_umask`] makes every file created from then on `0600`/`0700`
//! (sled, the engine stores and tokio files take their modes from the umask), and
//! [`secure_tree`] fixes the modes of what is already there, so a data directory written by
//! an older version is migrated at start.

use std::io;
use std::path::Path;

/// Mode of the directories the server creates.
pub(crate) const DIR_MODE: u32 = 0o700;
/// Mode of the files the server creates.
pub(crate) const FILE_MODE: u32 = 0o600;

/// Sets the process umask to `077`, so files and directories created from now on are
/// private to the owner. Process-wide; a no-op off Unix.
pub(crate) fn restrict_umask() {
    #[cfg(unix)]
    {
        use rustix::fs::Mode;
        let old = rustix::process::umask(Mode::from_raw_mode(0o077));
        if old.bits() & 0o077 != 0o077 {
            tracing::debug!(
                old = format!("{:03o}", old.bits()),
                "umask tightened to 077"
            );
        }
    }
}

/// Creates `dir` (and its parents) if needed and makes it and everything below it private:
/// directories `0700`, regular files `0600`. Symbolic links are not followed.
///
/// # Errors
/// The I/O error of the first entry that cannot be read or changed.
pub(crate) fn secure_tree(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    secure_entry(dir)
}

#[cfg(unix)]
fn secure_entry(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::symlink_metadata(path)?;
    let file_type = meta.file_type();
    let want = if file_type.is_dir() {
        DIR_MODE
    } else if file_type.is_file() {
        FILE_MODE
    } else {
        return Ok(());
    };
    if meta.permissions().mode() & 0o777 != want {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(want))?;
    }
    if file_type.is_dir() {
        for entry in std::fs::read_dir(path)? {
            match secure_entry(&entry?.path()) {
                // A temporary file removed while we walk.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                other => other?,
            }
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn secure_entry(_path: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn secure_tree_migrates_an_open_data_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("server").join("blobs");
        std::fs::create_dir_all(&sub).expect("mkdir");
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let file = sub.join("db");
        std::fs::write(&file, b"x").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        secure_tree(dir.path()).expect("secure");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(dir.path()), 0o700);
        assert_eq!(mode(&sub), 0o700);
        assert_eq!(mode(&file), 0o600);
    }
}
