//! The `bigmgr` client subcommands, run as real processes against a real `bigmgr serve` with
//! real `bigmgr-agent`s: the full flow an operator follows (create a cluster, let agents join,
//! add a service, deploy it with `--wait`, read the logs), and the failures a script must be
//! able to tell apart by exit code and stderr.

use bigmgr_test_support::{AgentProc, Proc, ServerProc, assert_contains, free_addr, temp_file};
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long one client command may take (a `--wait` on a deploy included).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// `bigmgr service add` of the demo `hello` on h1 and h2 of cluster `c`.
const ADD_HELLO: &[&str] = &[
    "service",
    "add",
    "c",
    "--name",
    "hello",
    "--stack",
    "demo",
    "--service",
    "hello",
    "--place",
    "hello_server=h1,h2",
];

/// How a client command ended.
pub(crate) struct Out {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Out {
    /// Asserts the exit code, showing both streams if it differs.
    #[track_caller]
    pub(crate) fn expect(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "exit code; stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts the exit code and that stdout contains `needle`.
    #[track_caller]
    pub(crate) fn says(&self, code: i32, needle: &str) -> &Self {
        assert_contains(&self.expect(code).stdout, needle);
        self
    }

    /// Asserts the exit code and that stderr contains `needle`.
    #[track_caller]
    fn complains(&self, code: i32, needle: &str) -> &Self {
        assert_contains(&self.expect(code).stderr, needle);
        self
    }

    /// The exit code and both streams, for a snapshot.
    fn transcript(&self) -> String {
        let code = self.code.map_or("none".to_string(), |c| c.to_string());
        format!(
            "exit code: {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        )
    }

    /// Stdout as JSON; panics if it is not.
    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// The client's environment: a home without a client config file, plus `env`.
pub(crate) struct Client {
    home: TempDir,
    env: Vec<(String, String)>,
}

impl Client {
    /// A client of `server` with its admin token, both from the environment.
    pub(crate) fn of(server: &ServerProc) -> Client {
        Client::with_env(vec![
            ("BIGMGR_SERVER".into(), server.url.clone()),
            ("BIGMGR_TOKEN".into(), server.token()),
        ])
    }

    /// A client with only these variables (and an empty home).
    pub(crate) fn with_env(env: Vec<(String, String)>) -> Client {
        Client {
            home: tempfile::tempdir().expect("temp dir"),
            env,
        }
    }

    /// Runs `bigmgr args…`, expects exit code 0 and answers stdout as JSON.
    #[track_caller]
    fn json(&self, args: &[&str]) -> Value {
        self.run(args).expect(0).json()
    }

    /// Runs `bigmgr args…` to its exit.
    pub(crate) fn run(&self, args: &[&str]) -> Out {
        let mut cmd = Command::new(bigmgr_test_support::bigmgr_bin());
        cmd.args(args);
        let home = self.home.path().display().to_string();
        let mut env = vec![
            ("HOME".to_string(), home.clone()),
            ("XDG_CONFIG_HOME".to_string(), home),
        ];
        env.extend(self.env.iter().cloned());
        let mut proc = Proc::spawn(format!("bigmgr {}", args.join(" ")), cmd, &env);
        let status = proc.wait_exit(CLIENT_TIMEOUT);
        Out {
            code: status.code(),
            stdout: proc.stdout.text(),
            stderr: proc.stderr.text(),
        }
    }
}

/// The cells of a table's first row (the line after the header).
fn first_row(table: &str) -> Vec<&str> {
    let row = table.lines().nth(1).unwrap_or_default();
    row.split_whitespace().collect()
}

/// Every task of a job detail, with its stage's name.
fn tasks(job: &Value) -> Vec<(String, Value)> {
    job["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .flat_map(|s| {
            let name = s["name"].as_str().unwrap_or_default().to_string();
            s["tasks"]
                .as_array()
                .expect("tasks")
                .iter()
                .map(move |t| (name.clone(), t.clone()))
        })
        .collect()
}

/// Agents `h1` (127.0.0.2) and `h2` (127.0.0.3) joined to cluster `c` with a join token from
/// the CLI; returns once `host list` shows both ONLINE.
fn join_h1_h2(server: &ServerProc, cli: &Client) -> Vec<AgentProc> {
    let token = cli.run(&["cluster", "join-token", "c"]);
    let token = token.expect(0).stdout.trim().to_string();
    assert!(token.starts_with("bmj_"), "{token}");
    let agents = [("h1", "127.0.0.2"), ("h2", "127.0.0.3")]
        .into_iter()
        .map(|(name, address)| {
            AgentProc::cmd(&server.url, name, address)
                .join_token(&token)
                .start()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let hosts = cli.json(&["host", "list", "c", "--json"]);
        let online = hosts
            .as_array()
            .expect("an array of hosts")
            .iter()
            .filter(|h| h["state"] == "ONLINE")
            .count();
        if online == 2 {
            return agents;
        }
        assert!(Instant::now() < deadline, "hosts not online: {hosts}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_cli_creates_a_cluster_deploys_with_wait_and_reads_logs() {
    let server = ServerProc::serve().fast_heartbeat().start();
    let cli = Client::of(&server);

    let created = cli.run(&["cluster", "create", "c"]);
    created.says(0, "cluster c created");
    let clusters = cli.json(&["cluster", "list", "--json"]);
    assert_eq!(clusters[0]["name"], "c", "{clusters}");

    // Dropping the agents also kills the demo daemons they started, also when a test fails.
    let _agents = join_h1_h2(&server, &cli);
    let table = cli.run(&["host", "list", "c"]);
    let table = &table.expect(0).stdout;
    assert!(table.starts_with("NAME "), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("h1 ") && l.contains("ONLINE")),
        "{table}"
    );

    let added = cli.run(ADD_HELLO);
    added.says(0, "service hello added");
    let services = cli.json(&["service", "list", "c", "--json"]);
    assert_eq!(
        services[0]["units"].as_array().unwrap().len(),
        2,
        "{services}"
    );

    // Deploy and wait: stage progress on stderr (not a terminal, so lines), the tasks' log
    // lines on stdout prefixed with host and stage, exit 0.
    let deploy = cli.run(&["job", "run", "c", "deploy", "--service", "hello", "--wait"]);
    deploy.expect(0);
    for stage in ["INSTALL", "CONFIGURE", "START"] {
        let line = format!("stage {stage} hello/hello_server: 2/2 SUCCEEDED");
        assert!(deploy.stderr.contains(&line), "{line}:\n{}", deploy.stderr);
    }
    for host in ["h1", "h2"] {
        let line = format!("[{host} START hello/hello_server] hello started");
        assert!(deploy.stdout.contains(&line), "{line}:\n{}", deploy.stdout);
    }
    assert!(
        deploy
            .stdout
            .lines()
            .last()
            .unwrap_or_default()
            .contains("SUCCEEDED"),
        "{}",
        deploy.stdout
    );

    let jobs = cli.json(&["job", "list", "c", "--json"]);
    let id = jobs[0]["id"].as_i64().expect("a job id");
    assert_eq!(jobs[0]["state"], "SUCCEEDED");
    let detail = cli.json(&["job", "show", &id.to_string(), "--json"]);
    let (_, start_h1) = tasks(&detail)
        .into_iter()
        .find(|(stage, t)| stage.starts_with("START") && t["host"] == "h1")
        .expect("a START task on h1");
    let task = start_h1["id"].as_i64().unwrap().to_string();
    let log = cli.run(&["job", "log", &id.to_string(), &task]);
    assert!(
        log.expect(0).stdout.starts_with("hello started"),
        "{}",
        log.stdout
    );
    let log = cli.json(&["job", "log", &id.to_string(), &task, "--json"]);
    assert!(!log["lines"].as_array().unwrap().is_empty(), "{log}");
    // Every task's log, prefixed; --follow on a finished job ends at once; so does wait.
    let all = cli.run(&["job", "log", &id.to_string(), "--follow"]);
    all.says(0, "[h2 START hello/hello_server] hello started");
    let waited = cli.run(&["job", "wait", &id.to_string()]);
    waited.says(0, "SUCCEEDED");
    let shown = cli.run(&["job", "show", &id.to_string()]);
    shown.says(0, "state:    SUCCEEDED");

    // Stop, then a check finds nothing running: the job fails and so does the command.
    cli.run(&["job", "run", "c", "stop", "--wait"]).expect(0);
    let check = cli.run(&["job", "run", "c", "check", "--service", "hello", "--wait"]);
    check.expect(1);
    assert_contains(&check.stdout, "check failed: hello is not running");
    assert_contains(&check.stderr, " FAILED with exit code 1");
    let last = check.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("bigmgr: job ") && last.contains("FAILED: 1 task failed"),
        "{}",
        check.stderr
    );
    // With --json the final job is printed, and the exit code is still the outcome.
    let check = cli.run(&["job", "run", "c", "check", "--wait", "--json"]);
    assert_eq!(check.expect(1).json()["state"], "FAILED");
}

#[test]
fn client_errors_say_what_went_wrong_and_exit_non_zero() {
    let server = ServerProc::start();
    let cli = Client::of(&server);

    let missing = cli.run(&["cluster", "show", "nope"]);
    missing.expect(1);
    assert!(missing.stdout.is_empty(), "{}", missing.stdout);
    assert!(
        missing.stderr.starts_with("bigmgr: ") && missing.stderr.contains("not found"),
        "{}",
        missing.stderr
    );
    assert_contains(&missing.stderr, "(404 Not Found)");
    let run = cli.run(&["job", "run", "nope", "start", "--wait"]);
    run.complains(1, "nope");

    cli.run(&["cluster", "create", "d"]).expect(0);
    let deleted = cli.run(&["cluster", "delete", "d"]);
    deleted.says(0, "cluster d deleted");
    cli.run(&["cluster", "delete", "d"]).expect(1);

    cli.run(&["cluster", "create", "r"]).expect(0);
    cli.run(&["host", "add", "r", "rh1", "127.0.0.2"]).expect(0);
    let bad = cli.run(&["host", "add", "r", "rh2", "$(touch /tmp/bigmgr-pwned)"]);
    bad.complains(1, "address");
    let shown = cli.run(&["host", "show", "r", "rh1"]);
    assert!(
        shown.expect(0).stdout.contains("WAITING"),
        "a host no agent registered for says so: {}",
        shown.stdout
    );
    let moved = cli.run(&["host", "set-address", "r", "rh1", "127.0.0.9"]);
    moved.says(0, "now has address 127.0.0.9");
    cli.run(&["host", "set-address", "r", "rh1", "x';id;'"])
        .expect(1);
    let placed = [
        "service",
        "add",
        "r",
        "--stack",
        "demo",
        "--service",
        "hello",
    ];
    // A dry run says what would be placed and adds nothing; a bad placement is refused alike.
    let dry = cli.run(&[&placed[..], &["--place", "hello_server=rh1", "--dry-run"]].concat());
    dry.says(0, "nothing was added");
    assert!(
        dry.stdout.contains("hello_server") && dry.stdout.contains("rh1"),
        "{}",
        dry.stdout
    );
    cli.run(&[&placed[..], &["--place", "hello_server=rh9", "--dry-run"]].concat())
        .complains(1, "rh9");
    assert!(
        cli.json(&["service", "list", "r", "--json"])
            .as_array()
            .is_some_and(Vec::is_empty)
    );
    cli.run(&[&placed[..], &["--place", "hello_server=rh1"]].concat())
        .expect(0);
    let busy = cli.run(&["host", "remove", "r", "rh1"]);
    busy.complains(1, "bigmgr service remove r hello");
    let removed = cli.run(&["service", "remove", "r", "hello"]);
    removed.says(0, "service hello removed from cluster r");
    let removed = cli.run(&["host", "remove", "r", "rh1"]);
    removed.says(0, "host rh1 removed from cluster r");
    cli.run(&["host", "remove", "r", "rh1"]).expect(1);

    let wrong = Client::with_env(vec![
        ("BIGMGR_SERVER".into(), server.url.clone()),
        ("BIGMGR_TOKEN".into(), "bmt_wrong".into()),
    ])
    .run(&["cluster", "list"]);
    wrong.expect(1);
    assert_contains(&wrong.stderr, "invalid API token");

    let nowhere = format!("http://{}", free_addr());
    let refused = cli.run(&["cluster", "list", "--server", &nowhere]);
    refused.expect(1);
    assert!(
        refused
            .stderr
            .contains(&format!("cannot reach the bigmgr server at {nowhere}"))
            && refused.stderr.contains("bigmgr serve"),
        "{}",
        refused.stderr
    );

    let no_token = Client::with_env(vec![("BIGMGR_SERVER".into(), server.url.clone())])
        .run(&["cluster", "list"]);
    no_token.expect(2);
    assert_contains(&no_token.stderr, "--token");

    let usage = cli.run(&[
        "job",
        "run",
        "c",
        "start",
        "--service",
        "a",
        "--hosts",
        "h1",
    ]);
    usage.expect(2);
    // A job has at most one target: clap refuses the second, naming both.
    assert_contains(
        &usage.stderr,
        "'--service <SERVICE>' cannot be used with '--hosts",
    );
}

#[test]
fn the_client_config_file_is_read_and_flags_win_over_it() {
    let server = ServerProc::start();
    let text = format!(
        "server = \"{}\"\ntoken = \"{}\"\n",
        server.url,
        server.token()
    );
    let (_dir, file) = temp_file("client.toml", &text);
    let file = file.display().to_string();
    let cli = Client::with_env(vec![("BIGMGR_CLIENT_CONFIG".into(), file.clone())]);
    cli.run(&["cluster", "create", "fromfile"]).expect(0);
    let clusters = cli.json(&["cluster", "list", "--json"]);
    assert_eq!(clusters[0]["name"], "fromfile");

    let overridden = cli.run(&["cluster", "list", "--token", "bmt_wrong"]);
    overridden.complains(1, "401");

    // The default file: $XDG_CONFIG_HOME/bigmgr/client.toml (else ~/.config/bigmgr/client.toml).
    let home = Client::with_env(vec![]);
    let dir = home.home.path().join("bigmgr");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&file, dir.join("client.toml")).unwrap();
    let table = home.run(&["cluster", "list"]);
    table.says(0, "fromfile");
}

#[test]
fn users_and_tokens_are_managed_from_the_cli_and_roles_hold() {
    let server = ServerProc::start();
    let admin = Client::of(&server);
    admin
        .run(&["user", "create", "vic", "--role", "viewer"])
        .expect(0);
    let listed = admin.run(&["user", "list"]);
    listed.expect(0);
    assert!(
        listed.stdout.contains("vic") && listed.stdout.contains("viewer"),
        "{}",
        listed.stdout
    );
    let created = admin.run(&["token", "--json", "create", "vic", "--name", "laptop"]);
    created.expect(0);
    let body: serde_json::Value = serde_json::from_str(&created.stdout).expect("JSON");
    let token = body["token"].as_str().expect("token").to_string();
    assert!(token.starts_with("bmt_"), "{token}");

    let vic = Client::with_env(vec![
        ("BIGMGR_SERVER".into(), server.url.clone()),
        ("BIGMGR_TOKEN".into(), token),
    ]);
    vic.run(&["cluster", "list"]).expect(0);
    let refused = vic.run(&["cluster", "create", "mine"]);
    refused.expect(1);
    assert_contains(&refused.stderr, "needs role admin");

    admin
        .run(&["token", "delete", &body["id"].to_string()])
        .expect(0);
    let gone = vic.run(&["cluster", "list"]);
    gone.expect(1);
    assert_contains(&gone.stderr, "invalid API token");
    admin.run(&["user", "delete", "vic"]).expect(0);
}

#[test]
fn configs_units_and_relations_are_managed_from_the_cli() {
    let server = ServerProc::start();
    let cli = Client::of(&server);
    cli.run(&["cluster", "create", "c"]).expect(0);
    for i in 1..=3 {
        let (name, address) = (format!("h{i}"), format!("127.0.0.{}", i + 1));
        cli.run(&["host", "add", "c", &name, &address]).expect(0);
    }
    let add = |name: &str, service: &str, place: &str| {
        let args = [
            "service",
            "add",
            "c",
            "--name",
            name,
            "--stack",
            "infra",
            "--service",
            service,
            "--place",
            place,
        ];
        cli.run(&args).expect(0);
    };
    add("nodes", "node_exporter", "node_exporter=h1,h2,h3");
    add("prom", "prometheus", "prometheus_server=h1");

    // A host override makes version 2; history, diff and show see it.
    let set_nodes = |values: &[&str]| {
        let set = ["config", "set", "c", "nodes", "--type", "node_exporter.env"];
        cli.run(&[&set[..], values].concat())
    };
    let set = set_nodes(&[
        "metrics_port=9200",
        "--host",
        "h2",
        "-m",
        "h2 has 9100 taken",
    ]);
    let stdout = &set.expect(0).stdout;
    assert!(
        stdout.contains("config version 2 of nodes") && stdout.contains("bigmgr config apply"),
        "{stdout}"
    );
    let history = cli.run(&["config", "history", "c", "nodes"]);
    let history = &history.expect(0).stdout;
    assert!(history.starts_with("VERSION "), "{history}");
    assert!(
        history.lines().any(|l| l.starts_with("2 ")
            && l.contains("admin")
            && l.ends_with("h2 has 9100 taken")),
        "{history}"
    );
    let versions = cli.json(&["config", "history", "c", "nodes", "--json"]);
    assert_eq!(versions[1]["version"], 2, "{versions}");
    assert_eq!(versions[1]["message"], "h2 has 9100 taken", "{versions}");
    let diff = cli.run(&["config", "diff", "c", "nodes", "1", "2"]);
    let diff = &diff.expect(0).stdout;
    assert!(diff.starts_with("CONFIG TYPE "), "{diff}");
    let row = first_row(diff);
    assert_eq!(
        row,
        ["node_exporter.env", "h2", "metrics_port", "-", "9200"],
        "{diff}"
    );
    let diff = cli.json(&["config", "diff", "c", "nodes", "1", "2", "--json"]);
    assert_eq!(
        diff,
        serde_json::json!([{"config_type": "node_exporter.env", "host": "h2",
                            "property": "metrics_port", "from": null, "to": 9200}])
    );
    let shown = cli.run(&["config", "show", "c", "nodes"]);
    let shown = &shown.expect(0).stdout;
    assert_contains(shown, "version: 2");
    assert!(
        shown
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["node_exporter.env", "h2", "metrics_port", "9200"]),
        "{shown}"
    );
    let first = cli.run(&["config", "show", "c", "nodes", "--version", "1"]);
    first.says(0, "initial configs");

    // A value of the wrong type: the server's message names the property; nothing written.
    let bad = set_nodes(&["metrics_port=abc"]);
    bad.expect(1);
    assert!(bad.stdout.is_empty(), "{}", bad.stdout);
    assert!(
        bad.stderr.starts_with("bigmgr: ")
            && bad.stderr.contains("metrics_port")
            && bad.stderr.contains("422"),
        "{}",
        bad.stderr
    );
    // No values at all is a usage error.
    set_nodes(&[]).expect(2);

    // Rollback: version 3 with version 1's values.
    let rolled = cli.run(&["config", "rollback", "c", "nodes", "1", "-m", "undo"]);
    rolled.says(0, "config version 3 of nodes");
    let v3 = cli.json(&["config", "show", "c", "nodes", "--json"]);
    assert_eq!(v3["version"], 3, "{v3}");
    assert_eq!(v3["message"], "undo", "{v3}");
    assert_eq!(v3["host_overrides"], serde_json::json!({}), "{v3}");

    // Snapshot, change, restore.
    let snap = cli.run(&["config", "snapshot", "c", "good", "-m", "known good"]);
    snap.says(0, "nodes 3, prom 1");
    let snaps = cli.run(&["config", "snapshots", "c"]);
    assert!(
        snaps
            .expect(0)
            .stdout
            .lines()
            .any(|l| l.starts_with("good ") && l.ends_with("known good")),
        "{}",
        snaps.stdout
    );
    cli.run(&[
        "config",
        "set",
        "c",
        "prom",
        "--type",
        "prometheus.yml",
        "scrape_interval=5s",
    ])
    .expect(0);
    let restored = cli.run(&["config", "restore", "c", "good"]);
    assert!(
        restored.expect(0).stdout.contains("1 service(s)")
            && restored.stdout.contains("restore snapshot good"),
        "{}",
        restored.stdout
    );
    let again = cli.run(&["config", "restore", "c", "good"]);
    again.says(0, "nothing changed");
    let prom = cli.json(&["config", "history", "c", "prom", "--json"]);
    assert_eq!(prom.as_array().map(Vec::len), Some(3), "{prom}");

    // Units: four, none configured, so none stale and nothing to apply.
    let units = cli.run(&["unit", "list", "c"]);
    let units = &units.expect(0).stdout;
    assert!(units.starts_with("ID "), "{units}");
    let rows: Vec<&str> = units.lines().skip(1).collect();
    assert_eq!(rows.len(), 4, "{units}");
    assert!(rows.iter().all(|r| r.ends_with(" no")), "{units}");
    let units = cli.json(&["unit", "list", "c", "--json"]);
    assert_eq!(units.as_array().map(Vec::len), Some(4), "{units}");
    let applied = cli.run(&["config", "apply", "c"]);
    assert_eq!(applied.expect(0).stdout.trim(), "nothing is stale");
    let applied = cli.run(&["config", "apply", "c", "--service", "nodes", "--wait"]);
    assert_eq!(applied.expect(0).stdout.trim(), "nothing is stale");
    let dup = cli.run(&["unit", "add", "c", "nodes", "node_exporter", "h1"]);
    dup.complains(1, "409");
    cli.run(&["host", "add", "c", "h4", "127.0.0.5"]).expect(0);
    let placed = cli.run(&["unit", "add", "c", "nodes", "node_exporter", "h4"]);
    let placed = &placed.expect(0).stdout;
    assert!(
        placed.contains("1 unit(s) of nodes/node_exporter added")
            && placed.contains("deploy --units 5 --wait"),
        "{placed}"
    );
    assert!(
        placed
            .lines()
            .any(|l| l.starts_with("5 ") && l.contains(" h4 ")),
        "{placed}"
    );
    let removed = cli.run(&["unit", "remove", "c", "5"]);
    removed.says(0, "unit 5 removed");
    cli.run(&["unit", "remove", "c", "5"]).expect(1);

    // Relations: add, list, events; mismatches and duplicates are refused; remove.
    let related = cli.run(&["relation", "add", "c", "prom", "nodes"]);
    related.says(0, "relation 1 added");
    let listed = cli.run(&["relation", "list", "c"]);
    let row = first_row(&listed.expect(0).stdout);
    assert_eq!(
        row,
        [
            "1",
            "prom:metrics",
            "nodes:metrics",
            "prometheus-scrape",
            "yes"
        ],
        "{}",
        listed.stdout
    );
    let events = cli.run(&["relation", "events", "c", "1"]);
    let events = &events.expect(0).stdout;
    assert!(events.starts_with("TIME "), "{events}");
    assert_eq!(
        events.lines().filter(|l| l.contains(" joined ")).count(),
        2,
        "{events}"
    );
    let again = cli.run(&["relation", "add", "c", "prom", "nodes"]);
    again.complains(1, "409");
    let itself = cli.run(&["relation", "add", "c", "prom", "prom"]);
    itself.complains(1, "can't be related to itself");
    let unknown = cli.run(&["relation", "add", "c", "prom:scrape", "nodes"]);
    unknown.complains(1, "metrics (prometheus-scrape)");
    let removed = cli.run(&["relation", "remove", "c", "1"]);
    removed.says(0, "relation 1 removed");
    let listed = cli.json(&["relation", "list", "c", "--json"]);
    assert_eq!(listed, serde_json::json!([]));
    let events = cli.json(&["relation", "events", "c", "1", "--json"]);
    assert_eq!(events.as_array().unwrap().last().unwrap()["kind"], "broken");
    cli.run(&["relation", "remove", "c", "1"]).expect(1);
}

/// Asserts `out`'s transcript against snapshot `name` (`snapshots/it__cli__NAME.snap`), with
/// what changes from run to run replaced: times, spans of time, ports and temporary
/// directories. Runs of spaces are folded into two, since a column is as wide as its widest
/// (volatile) cell.
#[track_caller]
fn assert_transcript(name: &str, out: &Out) {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(true);
    for (volatile, stands_for) in [
        (r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC", "[time]"),
        (
            r"\b(\d+ms|\d+\.\ds|\d+m\d{2}s|\d+h\d{2}m|\d+d\d{2}h)\b",
            "[span]",
        ),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[port]"),
        (r"/tmp/\.tmp\w+", "[tmp]"),
        (r" {2,}", "  "),
    ] {
        settings.add_filter(volatile, stands_for);
    }
    settings.bind(|| insta::assert_snapshot!(name, out.transcript()));
}

/// What a person reads: the tables and details of the main read commands, a finished job, and
/// the messages of refused input. A change to any of them shows as a snapshot diff.
#[test]
fn the_cli_s_human_output_matches_the_snapshots() {
    let server = ServerProc::serve().fast_heartbeat().start();
    let cli = Client::of(&server);
    assert_transcript("cluster_create", &cli.run(&["cluster", "create", "c"]));
    for (name, address) in [("h1", "127.0.0.2"), ("h2", "127.0.0.3")] {
        cli.run(&["host", "add", "c", name, address]).expect(0);
    }
    // No agent yet: the hosts wait, with nothing reported.
    assert_transcript("host_list_waiting", &cli.run(&["host", "list", "c"]));
    let added = cli.run(ADD_HELLO);
    assert_transcript("service_add", &added);
    assert_transcript("service_list_new", &cli.run(&["service", "list", "c"]));

    let _agents = join_h1_h2(&server, &cli);
    cli.run(&["job", "run", "c", "deploy", "--service", "hello", "--wait"])
        .expect(0);
    assert_transcript("cluster_list", &cli.run(&["cluster", "list"]));
    assert_transcript("service_list_started", &cli.run(&["service", "list", "c"]));
    assert_transcript("job_list", &cli.run(&["job", "list", "c"]));
    assert_transcript("job_show_succeeded", &cli.run(&["job", "show", "1"]));

    // Refused input: what was wrong, and the server's status.
    assert_transcript(
        "error_unknown_cluster",
        &cli.run(&["cluster", "show", "nope"]),
    );
    assert_transcript(
        "error_bad_cluster_name",
        &cli.run(&["cluster", "create", "bad name!"]),
    );
    assert_transcript(
        "error_bad_address",
        &cli.run(&["host", "add", "c", "h3", "x;id"]),
    );
    assert_transcript(
        "error_bad_config_value",
        &cli.run(&[
            "config",
            "set",
            "c",
            "hello",
            "--type",
            "hello.conf",
            "interval=soon",
        ]),
    );
    assert_transcript(
        "error_two_targets",
        &cli.run(&[
            "job",
            "run",
            "c",
            "start",
            "--service",
            "hello",
            "--hosts",
            "h1",
        ]),
    );
    cli.run(&["job", "run", "c", "stop", "--wait"]).expect(0);
}

/// Issue 18: a cluster spec planned, applied (following its job), applied again with nothing
/// to do, edited, and refused whole with its problems' lines when it is wrong.
#[test]
fn a_cluster_spec_is_planned_applied_and_applied_again_from_the_cli() {
    let server = ServerProc::serve().fast_heartbeat().start();
    let cli = Client::of(&server);
    cli.run(&["cluster", "create", "c"]).expect(0);
    // Dropping the agents also kills the demo daemons they started, also when a test fails.
    let _agents = join_h1_h2(&server, &cli);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.toml");
    let spec = r#"cluster = "c"

[services.hello]
stack = "demo"
service = "hello"
placement = { hello_server = ["h1", "h2"] }
configs = { "hello.conf" = { greeting = "hi" } }
"#;
    std::fs::write(&file, spec).unwrap();
    let path = file.to_str().unwrap();

    let plan = cli.run(&["plan", "-f", path]);
    plan.says(0, "+ service hello");
    plan.says(0, "+ unit hello_server of hello on h2");
    plan.says(0, "> job deploy of hello");
    cli.run(&["apply", "-f", path, "--wait"]).expect(0);
    let units = cli.json(&["unit", "list", "c", "--json"]);
    let started = units
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["state"] == "STARTED")
        .count();
    assert_eq!(started, 2, "{units}");

    // The same file again: nothing planned, nothing run.
    cli.run(&["plan", "-f", path]).says(0, "nothing to do");
    let again = cli.run(&["apply", "-f", path]);
    again.says(0, "nothing to do");
    assert!(!again.stdout.contains("job "), "{}", again.stdout);

    // An edited value: exactly that, and a reconfigure.
    std::fs::write(&file, spec.replace("\"hi\"", "\"bye\"")).unwrap();
    let plan = cli.run(&["plan", "-f", path]);
    plan.says(0, r#"~ hello hello.conf.greeting: "hi" -> "bye""#);
    plan.says(0, "> job reconfigure of hello");
    cli.run(&["apply", "-f", path, "--wait"]).expect(0);
    cli.run(&["plan", "-f", path]).says(0, "nothing to do");

    // A wrong spec: refused with its problems' lines, nothing changed.
    let before = cli.json(&["unit", "list", "c", "--json"]);
    std::fs::write(
        &file,
        spec.replace("hello_server = [", "hello_sever = [")
            .replace("\"hi\"", "3"),
    )
    .unwrap();
    let refused = cli.run(&["apply", "-f", path]);
    assert_ne!(refused.code, Some(0), "{}", refused.stdout);
    assert_contains(&refused.stderr, "line 6");
    assert_contains(&refused.stderr, "line 7");
    assert_eq!(cli.json(&["unit", "list", "c", "--json"]), before);

    // hello on h1 only: kept without --prune; with it, h2's unit is stopped, then removed.
    let narrowed = spec
        .replace(r#"["h1", "h2"]"#, r#"["h1"]"#)
        .replace("\"hi\"", "\"bye\"");
    std::fs::write(&file, narrowed).unwrap();
    let plan = cli.run(&["plan", "-f", path]);
    plan.says(
        0,
        "= kept (not in the spec; --prune plans its removal): unit hello_server of hello on h2",
    );
    cli.run(&["plan", "-f", path, "--prune"])
        .says(0, "> job stop of hello on h2");
    let pruned = cli.run(&["apply", "-f", path, "--prune", "--wait"]);
    pruned.says(0, "- unit hello_server of hello on h2");
    let units = cli.json(&["unit", "list", "c", "--json"]);
    let hosts: Vec<&str> = units
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["h1"], "{units}");
    cli.run(&["plan", "-f", path, "--prune"])
        .says(0, "nothing to do");

    // Exported, the cluster plans nothing on itself, and rebuilds the same cluster on an
    // empty server (its hosts wait for agents there, which is all this needs).
    let exported = dir.path().join("exported.toml");
    let export_path = exported.to_str().unwrap();
    cli.run(&["export", "c", "-o", export_path]).expect(0);
    let text = std::fs::read_to_string(&exported).unwrap();
    assert_eq!(cli.run(&["export", "c"]).expect(0).stdout, text.trim_end());
    assert_contains(&text, "placement = { hello_server = [\"h1\"] }");
    cli.run(&["plan", "-f", export_path, "--prune"])
        .says(0, "nothing to do");
    let empty = ServerProc::serve().start();
    let other = Client::of(&empty);
    let rebuilt = other.run(&["apply", "-f", export_path]);
    rebuilt.says(0, "+ cluster c");
    rebuilt.says(0, "+ host h1");
    assert_eq!(
        other.run(&["export", "c"]).expect(0).stdout,
        text.trim_end()
    );

    cli.run(&["job", "run", "c", "stop", "--service", "hello", "--wait"])
        .expect(0);
}
