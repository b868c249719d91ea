//! Alert checks on the agent: the port, web and script checks the server rendered into each
//! unit's record (from its stack's `[[alert]]` definitions) run here, each on its own
//! interval, and the latest result of each goes with every heartbeat. The server turns the
//! results into alert states with the definitions' thresholds and `for` times.

use super::UnitRecord;
use super::health::{Line, run_command};
use crate::model::{CheckResult, CheckSpec, Probe, now_ms};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// How many checks run at once.
const PARALLEL: usize = 16;

/// A check of a unit: cluster, service, component, definition.
type Key = (String, String, String, String);

/// Runs the checks of the units' records when they are due and keeps their latest results.
pub struct Checker {
    /// The client of web checks, built for the first one: building it reads and parses every
    /// CA certificate of the system, which an agent with no web check (and an idle one) should
    /// not hold in memory.
    http: Arc<OnceLock<reqwest::Client>>,
    last_run: HashMap<Key, Instant>,
    results: HashMap<Key, CheckResult>,
}

impl Default for Checker {
    fn default() -> Self {
        Checker::new()
    }
}

impl Checker {
    /// A checker with no results yet.
    pub fn new() -> Checker {
        Checker {
            http: Arc::default(),
            last_run: HashMap::new(),
            results: HashMap::new(),
        }
    }

    /// Runs every check of `records` that is due (never run, or its interval passed), at most
    /// [`PARALLEL`] at once, and returns the latest result of every check the records name,
    /// sorted; results of checks no record names any more are dropped.
    pub async fn run(&mut self, records: &[UnitRecord]) -> Vec<CheckResult> {
        let now = Instant::now();
        let mut named = std::collections::HashSet::new();
        let mut due = Vec::new();
        for r in records {
            for spec in &r.checks {
                let key = (
                    r.cluster.clone(),
                    r.service.clone(),
                    r.component.clone(),
                    spec.name.clone(),
                );
                named.insert(key.clone());
                let interval = Duration::from_millis(spec.interval_ms.max(1000));
                let is_due = self
                    .last_run
                    .get(&key)
                    .is_none_or(|t| now.duration_since(*t) >= interval);
                if is_due {
                    self.last_run.insert(key, now);
                    due.push((r.clone(), spec.clone()));
                }
            }
        }
        let mut todo = due.into_iter();
        let mut running = JoinSet::new();
        loop {
            for (record, spec) in todo.by_ref().take(PARALLEL - running.len()) {
                running.spawn(run_one(self.http.clone(), record, spec));
            }
            match running.join_next().await {
                Some(Ok(result)) => {
                    let key = (
                        result.cluster.clone(),
                        result.service.clone(),
                        result.component.clone(),
                        result.name.clone(),
                    );
                    self.results.insert(key, result);
                }
                Some(Err(e)) => tracing::warn!(error = %e, "an alert check failed to run"),
                None => break,
            }
        }
        self.results.retain(|k, _| named.contains(k));
        self.last_run.retain(|k, _| named.contains(k));
        let mut out: Vec<CheckResult> = self.results.values().cloned().collect();
        out.sort_by(|a, b| {
            (&a.cluster, &a.service, &a.component, &a.name).cmp(&(
                &b.cluster,
                &b.service,
                &b.component,
                &b.name,
            ))
        });
        out
    }
}

/// The client of web checks.
fn web_client() -> reqwest::Client {
    crate::tls::install_default_provider();
    reqwest::Client::builder()
        .user_agent(concat!("bigmgr-agent/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// Runs one check (`http`: the client of web checks, built by the first one).
async fn run_one(
    http: Arc<OnceLock<reqwest::Client>>,
    record: UnitRecord,
    spec: CheckSpec,
) -> CheckResult {
    let timeout = Duration::from_millis(spec.timeout_ms.max(100));
    let started = Instant::now();
    let mut result = CheckResult {
        cluster: record.cluster.clone(),
        service: record.service.clone(),
        component: record.component.clone(),
        name: spec.name.clone(),
        ok: false,
        latency_ms: 0,
        exit_code: None,
        http_status: None,
        text: String::new(),
        checked_at: now_ms(),
    };
    match &spec.probe {
        Probe::Port { address, port } => {
            let target = format!("{address}:{port}");
            let target = if address.contains(':') {
                format!("[{address}]:{port}")
            } else {
                target
            };
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&target)).await {
                Ok(Ok(_)) => {
                    result.ok = true;
                    result.text = format!("{target} accepts connections");
                }
                Ok(Err(e)) => result.text = format!("cannot connect to {target}: {e}"),
                Err(_) => result.text = format!("no connection to {target} within {timeout:?}"),
            }
        }
        Probe::Web { url, expect_status } => match http
            .get_or_init(web_client)
            .get(url)
            .timeout(timeout)
            .send()
            .await
        {
            Ok(res) => {
                let status = res.status().as_u16();
                result.http_status = Some(status);
                result.ok = status == *expect_status;
                result.text = if result.ok {
                    format!("GET {url} answered {status}")
                } else {
                    format!("GET {url} answered {status}, not {expect_status}")
                };
            }
            Err(e) => result.text = format!("GET {url} failed: {e}"),
        },
        Probe::Script { command } => {
            let (code, line) = run_command(&record, command, timeout, Line::First).await;
            result.exit_code = code;
            result.ok = code == Some(0);
            result.text = line;
        }
        Probe::Invalid { message } => {
            result.text = format!("{}{message}", crate::model::CANNOT_CHECK);
        }
    }
    result.latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn spec(name: &str, probe: Probe) -> CheckSpec {
        CheckSpec {
            name: name.into(),
            interval_ms: 60_000,
            timeout_ms: 2_000,
            probe,
        }
    }

    /// A unit record whose script prints its lines and exits with the code the command names.
    fn record(dir: &std::path::Path, checks: Vec<CheckSpec>) -> UnitRecord {
        let script = dir.join("run.sh");
        std::fs::write(
            &script,
            "#!/bin/sh\ncase \"$1\" in\n  warn) echo '  '; echo 'slow disk'; echo later; exit 1 ;;\n  \
             crit) echo 'no quorum' >&2; exit 2 ;;\n  odd) exit 7 ;;\n  *) echo fine ;;\nesac\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        UnitRecord {
            cluster: "c".into(),
            service: "s".into(),
            service_def: "s".into(),
            component: "s_server".into(),
            script,
            unit_dir: dir.to_path_buf(),
            env: Vec::new(),
            status: true,
            checks,
        }
    }

    #[tokio::test]
    async fn port_web_script_and_invalid_checks_report_what_they_found_when_due() {
        let dir = tempfile::tempdir().unwrap();
        let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open_port = open.local_addr().unwrap().port();
        let closed_port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        // A one-shot HTTP server answering 503.
        let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let web_port = web.local_addr().unwrap().port();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut s, _)) = web.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 503 Busy\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await;
            }
        });
        let port = |p| Probe::Port {
            address: "127.0.0.1".into(),
            port: p,
        };
        let checks = vec![
            spec("s.open", port(open_port)),
            spec("s.closed", port(closed_port)),
            spec(
                "s.web",
                Probe::Web {
                    url: format!("http://127.0.0.1:{web_port}/health"),
                    expect_status: 200,
                },
            ),
            spec(
                "s.fine",
                Probe::Script {
                    command: "fine".into(),
                },
            ),
            spec(
                "s.warn",
                Probe::Script {
                    command: "warn".into(),
                },
            ),
            spec(
                "s.crit",
                Probe::Script {
                    command: "crit".into(),
                },
            ),
            spec(
                "s.odd",
                Probe::Script {
                    command: "odd".into(),
                },
            ),
            spec(
                "s.bad",
                Probe::Invalid {
                    message: "the port renders to 'x'".into(),
                },
            ),
        ];
        let records = vec![record(dir.path(), checks)];
        let mut checker = Checker::new();
        let results = checker.run(&records).await;
        let by: HashMap<&str, &CheckResult> =
            results.iter().map(|r| (r.name.as_str(), r)).collect();
        assert_eq!(results.len(), 8);
        assert!(by["s.open"].ok, "{:?}", by["s.open"]);
        assert!(!by["s.closed"].ok && by["s.closed"].text.contains("cannot connect"));
        assert_eq!(by["s.web"].http_status, Some(503));
        assert!(!by["s.web"].ok && by["s.web"].text.contains("not 200"));
        assert_eq!(
            (by["s.fine"].exit_code, by["s.fine"].text.as_str()),
            (Some(0), "fine")
        );
        assert_eq!(
            (by["s.warn"].exit_code, by["s.warn"].text.as_str()),
            (Some(1), "slow disk"),
            "the first line that is not blank"
        );
        assert_eq!(
            (by["s.crit"].exit_code, by["s.crit"].text.as_str()),
            (Some(2), "no quorum")
        );
        assert_eq!(by["s.odd"].exit_code, Some(7));
        assert!(by["s.bad"].text.starts_with(crate::model::CANNOT_CHECK));
        // Not due again within the interval: the same results, not run again.
        let again = checker.run(&records).await;
        assert_eq!(again, results);
        // A check no record names any more is dropped.
        let fewer = vec![record(dir.path(), vec![spec("s.open", port(open_port))])];
        let left = checker.run(&fewer).await;
        assert_eq!(left.len(), 1);
        drop(open);
    }
}
