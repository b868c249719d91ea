//! Real `bigmgr-agent` processes, and the daemons their scripts start.

use crate::bins::agent_bin;
use crate::daemons::kill_daemons;
use crate::process::Proc;
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

/// How to start a `bigmgr-agent`: `AgentProc::cmd(url, name, address)` then options, then
/// `start()`.
pub struct AgentCmd {
    args: Vec<String>,
    env: Vec<(String, String)>,
    root: PathBuf,
    tmp: Option<TempDir>,
    binary: Option<PathBuf>,
}

/// A running `bigmgr-agent` process. Dropping it kills the agent, then the daemons its scripts
/// left running.
pub struct AgentProc {
    /// The process.
    pub proc: Proc,
    /// Its root directory.
    pub root: PathBuf,
    _tmp: Option<TempDir>,
}

impl Drop for AgentProc {
    /// The agent first (so it starts nothing more), then whatever its scripts left running:
    /// the daemons whose pid files are under `<root>/units/`, each with its process group (they
    /// run detached, in their own sessions), so no test leaves a daemon behind.
    fn drop(&mut self) {
        self.proc.kill();
        kill_daemons(&self.root.join("units"));
    }
}

impl AgentProc {
    /// An agent of the server at `url` named `name` on `address`, with a fresh root.
    pub fn cmd(url: &str, name: &str, address: &str) -> AgentCmd {
        let tmp = tempfile::tempdir().expect("temp dir");
        AgentCmd {
            args: vec![
                "--server".into(),
                url.into(),
                "--name".into(),
                name.into(),
                "--address".into(),
                address.into(),
            ],
            env: vec![
                ("BIGMGR_LOG".into(), "info".into()),
                (
                    "BIGMGR_CACHE_DIR".into(),
                    crate::bins::software_cache().to_string_lossy().into_owned(),
                ),
            ],
            root: tmp.path().join("root"),
            tmp: Some(tmp),
            binary: None,
        }
    }
}

args_and_env!(AgentCmd);

impl AgentCmd {
    /// Joins with this token (passed in `BIGMGR_JOIN_TOKEN`, as an operator should).
    pub fn join_token(self, token: &str) -> Self {
        self.env("BIGMGR_JOIN_TOKEN", token)
    }

    /// Uses this root (the caller keeps it).
    pub fn root(mut self, dir: &Path) -> Self {
        self.root = dir.to_path_buf();
        self
    }

    /// Runs this `bigmgr-agent` executable instead of the target directory's (another build
    /// profile's, say).
    pub fn binary(mut self, path: &Path) -> Self {
        self.binary = Some(path.to_path_buf());
        self
    }

    /// Starts it.
    pub fn start(self) -> AgentProc {
        let mut cmd = Command::new(self.binary.unwrap_or_else(agent_bin));
        cmd.args(&self.args).arg("--root").arg(&self.root);
        let what = format!("bigmgr-agent {}", self.args.join(" "));
        let proc = Proc::spawn(what, cmd, &self.env);
        AgentProc {
            proc,
            root: self.root,
            _tmp: self.tmp,
        }
    }
}
