//! The client's settings: the server's URL, the token and the CA to trust, each from its
//! flag, else its variable (`BIGMGR_SERVER`, `BIGMGR_TOKEN`, `BIGMGR_CA`; clap merges these),
//! else the client config file, else the default.
//!
//! The config file is `--config` / `BIGMGR_CLIENT_CONFIG` (which must exist), else
//! `$XDG_CONFIG_HOME/bigmgr/client.toml` or `~/.config/bigmgr/client.toml` if one exists:
//!
//! ```toml
//! server = "https://10.0.0.5:7070"
//! token = "bmt_…"
//! ca = "/var/lib/bigmgr/tls/ca.pem"   # relative to the file's directory
//! ```

use super::{Error, Result};
use crate::cli::ClientOpts;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The server a client talks to when nothing says otherwise.
pub const DEFAULT_SERVER: &str = "https://127.0.0.1:7070";

/// What a client config file may hold; unknown keys are errors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientFile {
    /// The server's URL.
    pub server: Option<String>,
    /// The API token.
    pub token: Option<String>,
    /// The server's CA certificate (PEM), relative to the file's directory.
    pub ca: Option<PathBuf>,
}

impl ClientFile {
    /// Reads and parses a client config file.
    pub fn load(path: &Path) -> Result<ClientFile> {
        crate::config::load_toml(path, "client config file", Error::Config)
    }
}

/// The resolved settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The server's base URL, `https://host:port` without a trailing slash.
    pub server: String,
    /// The bearer token; `None` when nothing gave one.
    pub token: Option<String>,
    /// The CA to trust for an `https://` server.
    pub ca: Option<PathBuf>,
}

impl Settings {
    /// Resolves `opts` (flags and variables) over the config file over the defaults.
    pub fn resolve(opts: &ClientOpts) -> Result<Settings> {
        let path = opts.config.clone().or_else(default_file);
        let file = match &path {
            Some(path) => {
                let mut file = ClientFile::load(path)?;
                let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                file.ca = file.ca.map(|ca| dir.join(ca));
                file
            }
            None => ClientFile::default(),
        };
        Settings::merge(opts, file)
    }

    /// Merges `opts` over `file` over the defaults.
    pub fn merge(opts: &ClientOpts, file: ClientFile) -> Result<Settings> {
        let server = opts
            .server
            .clone()
            .or(file.server)
            .unwrap_or_else(|| DEFAULT_SERVER.to_string());
        let token = opts
            .token
            .clone()
            .or(file.token)
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        Ok(Settings {
            server: normalize_server(&server)?,
            token,
            ca: opts.ca.clone().or(file.ca),
        })
    }
}

/// `host:port` becomes `https://host:port`; a trailing `/` goes. `https` and (for a server
/// run with `--insecure-http`) `http` are spoken.
pub fn normalize_server(text: &str) -> Result<String> {
    let text = text.trim().trim_end_matches('/');
    if text.is_empty() {
        return Err(Error::Config(
            "the server URL is empty; pass --server https://HOST:PORT".into(),
        ));
    }
    let url = if text.starts_with("https://") || text.starts_with("http://") {
        text.to_string()
    } else if text.contains("://") {
        return Err(Error::Config(format!(
            "{text} is not an https:// URL; pass --server https://HOST:PORT"
        )));
    } else {
        format!("https://{text}")
    };
    Ok(url)
}

/// The default config file, if it exists.
fn default_file() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from);
    let home = std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .map(|h| PathBuf::from(h).join(".config"));
    [xdg, home]
        .into_iter()
        .flatten()
        .map(|dir| dir.join("bigmgr").join("client.toml"))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_over_the_defaults() {
        let none = ClientOpts::default();
        let s = Settings::merge(&none, ClientFile::default()).unwrap();
        assert_eq!(s.server, DEFAULT_SERVER);
        assert_eq!(s.token, None);

        let file = ClientFile {
            server: Some("10.0.0.5:7070/".into()),
            token: Some("bmt_file\n".into()),
            ca: Some("ca.pem".into()),
        };
        let s = Settings::merge(&none, file.clone()).unwrap();
        assert_eq!(s.server, "https://10.0.0.5:7070");
        assert_eq!(s.ca.as_deref(), Some(Path::new("ca.pem")));
        assert_eq!(s.token.as_deref(), Some("bmt_file"));

        let flags = ClientOpts {
            server: Some("http://h:1".into()),
            token: Some("bmt_flag".into()),
            ..ClientOpts::default()
        };
        let s = Settings::merge(&flags, file).unwrap();
        assert_eq!(s.server, "http://h:1");
        assert_eq!(s.token.as_deref(), Some("bmt_flag"));
    }

    #[test]
    fn bad_urls_and_files_are_config_errors() {
        for bad in ["", "ftp://h"] {
            let e = normalize_server(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}: {e}");
        }
        assert!(toml::from_str::<ClientFile>("sever = \"x\"").is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.toml");
        std::fs::write(&path, "server = \"h:2\"\ntoken = \"t\"\n").unwrap();
        let f = ClientFile::load(&path).unwrap();
        assert_eq!(f.server.as_deref(), Some("h:2"));
        assert!(ClientFile::load(&dir.path().join("missing.toml")).is_err());
    }
}
