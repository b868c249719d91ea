//! The admin token: the one bearer token of the REST API until users and roles arrive.
//!
//! On the first start it comes from `BIGMGR_ADMIN_TOKEN` if that is set, else it is generated;
//! either way it is written to `<data>/admin-token` with mode 0600. Later starts read the file.
//! A `BIGMGR_ADMIN_TOKEN` that differs from the file replaces it, so the file always holds the
//! token in force.

use crate::{Error, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The token file's name in the data directory.
pub const FILE_NAME: &str = "admin-token";
/// The prefix of generated admin tokens, so a leaked one is recognisable.
pub const PREFIX: &str = "bmt_";
/// The shortest token accepted from `BIGMGR_ADMIN_TOKEN`.
pub const MIN_LEN: usize = 16;

/// Where the token in force came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `BIGMGR_ADMIN_TOKEN`.
    Env,
    /// The token file, written by an earlier start.
    File,
    /// Generated just now (first start): show it once.
    Generated,
}

/// The admin token in force and its file.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken {
    /// The secret.
    pub token: String,
    /// `<data>/admin-token`.
    pub path: PathBuf,
    /// Where it came from.
    pub origin: Origin,
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminToken")
            .field("path", &self.path)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// Finds the admin token for the data directory `data` (which must exist): `from_env` if given,
/// else the token file's, else a new one. The file is written (mode 0600) unless it already
/// holds the token.
pub fn load_or_create(data: &Path, from_env: Option<String>) -> Result<AdminToken> {
    let path = data.join(FILE_NAME);
    let stored = read(&path)?;
    let (token, origin) = match from_env {
        Some(token) => {
            check(&token)?;
            (token, Origin::Env)
        }
        None => match &stored {
            Some(token) => (token.clone(), Origin::File),
            None => (bigmgr_core::secret::new_secret(PREFIX)?, Origin::Generated),
        },
    };
    if stored.as_deref() != Some(token.as_str()) {
        if stored.is_some() {
            tracing::warn!(file = %path.display(), "BIGMGR_ADMIN_TOKEN differs from the token file; the file now holds the new token");
        }
        write(&path, &token)?;
    } else {
        tighten(&path)?;
    }
    Ok(AdminToken {
        token,
        path,
        origin,
    })
}

/// A token from the environment must be long enough and printable without spaces, since it
/// travels in an HTTP header.
fn check(token: &str) -> Result<()> {
    if token.len() < MIN_LEN || !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Error::Config(format!(
            "BIGMGR_ADMIN_TOKEN must be at least {MIN_LEN} printable ASCII characters without spaces"
        )));
    }
    Ok(())
}

/// The token in the file, if there is a file.
fn read(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let token = text.trim();
            if token.is_empty() {
                return Err(Error::Config(format!(
                    "{} is empty; delete it to have a new admin token generated",
                    path.display()
                )));
            }
            Ok(Some(token.to_string()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Writes the token to a new file of mode 0600 and renames it over `path`, so no reader ever
/// sees a partial token and nobody else may read it, whatever the umask.
fn write(path: &Path, token: &str) -> Result<()> {
    bigmgr_core::fsutil::write_atomic(path, format!("{token}\n").as_bytes(), 0o600, true)
        .map_err(|e| Error::io(path, e))
}

/// Makes an existing token file private again if someone loosened its mode.
fn tighten(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(file = %path.display(), "the admin token file was readable by others; setting mode 0600");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn generated_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), None).unwrap();
        assert_eq!(first.origin, Origin::Generated);
        assert!(first.token.starts_with(PREFIX));
        assert_eq!(mode(&first.path), 0o600);
        let again = load_or_create(dir.path(), None).unwrap();
        assert_eq!(again.origin, Origin::File);
        assert_eq!(again.token, first.token);
    }

    #[test]
    fn the_environment_wins_and_is_written() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create(dir.path(), None).unwrap();
        let env = "from-the-environment-123".to_string();
        let t = load_or_create(dir.path(), Some(env.clone())).unwrap();
        assert_eq!((t.token.as_str(), t.origin), (env.as_str(), Origin::Env));
        assert_eq!(load_or_create(dir.path(), None).unwrap().token, env);
        assert_eq!(mode(&t.path), 0o600);
    }

    #[test]
    fn weak_tokens_and_loose_files_are_handled() {
        let dir = tempfile::tempdir().unwrap();
        for weak in ["short", "has a space in it, sadly"] {
            let e = load_or_create(dir.path(), Some(weak.into())).unwrap_err();
            assert!(e.to_string().contains("BIGMGR_ADMIN_TOKEN"), "{e}");
        }
        let t = load_or_create(dir.path(), None).unwrap();
        std::fs::set_permissions(&t.path, std::fs::Permissions::from_mode(0o644)).unwrap();
        load_or_create(dir.path(), None).unwrap();
        assert_eq!(mode(&t.path), 0o600);
        std::fs::write(&t.path, "\n").unwrap();
        assert!(
            load_or_create(dir.path(), None)
                .unwrap_err()
                .to_string()
                .contains("is empty")
        );
    }
}
