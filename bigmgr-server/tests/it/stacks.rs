//! The shipped stacks on real services: a real `bigmgr serve`, real `bigmgr-agent`s on
//! 127.0.0.2, .3, … with their own roots, and the Debian packages the stacks install
//! (`scripts/test.sh` installs them first). Each test checks the service from outside with
//! its own client (ZooKeeper's `srvr`, redis-cli, etcdctl, mariadb, Prometheus' HTTP API),
//! not only through the stack's `check`.
//!
//! They run one at a time ([`SERIAL`]): they share the machine's two cores, and each starts
//! JVMs or databases.

use bigmgr_test_support::{
    AgentProc, Api, ServerProc, assert_contains, copy_dir, stacks_dir, wait_until,
};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Real-service tests take turns.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long one real job may take (package installs are done before; this is daemons
/// starting and checks settling).
const JOB_TIMEOUT: Duration = Duration::from_secs(240);

/// A server with cluster `c` and one agent per host `h1`, `h2`, … on 127.0.0.2, .3, ….
/// It holds [`SERIAL`] until it is dropped, after its processes.
pub struct Deployment {
    pub server: ServerProc,
    pub api: Api,
    pub agents: Vec<AgentProc>,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl Deployment {
    /// Waits for its turn ([`SERIAL`]), starts the server (heartbeat 1 s) and `hosts` agents,
    /// and waits until all are ONLINE.
    pub async fn start(hosts: usize) -> Deployment {
        Deployment::start_with(hosts, &[]).await
    }

    /// [`Deployment::start`] with more arguments for `bigmgr serve`.
    pub async fn start_with(hosts: usize, args: &[&str]) -> Deployment {
        let serial = SERIAL.lock().await;
        let mut cmd = ServerProc::serve().fast_heartbeat();
        for a in args {
            cmd = cmd.arg(*a);
        }
        let server = cmd.start();
        let api = server.api();
        api.create_cluster("c").await;
        let mut d = Deployment {
            server,
            api,
            agents: Vec::new(),
            _serial: serial,
        };
        for i in 1..=hosts {
            d.add_agent(i).await;
        }
        d
    }

    /// [`Deployment::start`] with `service` (as `POST …/services` takes it) added and deployed.
    pub async fn deployed(hosts: usize, service: Value) -> Deployment {
        let d = Deployment::start(hosts).await;
        let name = service["name"].clone();
        d.add_service(service).await;
        d.run("deploy", json!({ "service": name })).await;
        d
    }

    /// Starts agent `h<i>` on `127.0.0.<i+1>` and waits until it is ONLINE.
    pub async fn add_agent(&mut self, i: usize) {
        let agent = self
            .api
            .join_agent("c", &format!("h{i}"), &address(i))
            .await;
        self.agents.push(agent);
    }

    /// The agent root of `h<i>`.
    pub fn root(&self, i: usize) -> PathBuf {
        self.agents[i - 1].root.clone()
    }

    /// The unit directory of a service's component on `h<i>`.
    pub fn unit_dir(&self, i: usize, service: &str, component: &str) -> PathBuf {
        self.root(i)
            .join("units")
            .join("c")
            .join(service)
            .join(component)
    }

    /// Adds a service instance; 201 expected.
    pub async fn add_service(&self, body: Value) -> Value {
        self.api.add_service("c", body).await
    }

    /// Submits a job and waits for it; panics with every failed task's log unless it
    /// SUCCEEDED.
    pub async fn run(&self, command: &str, target: Value) -> Value {
        self.api.run_job("c", command, target, JOB_TIMEOUT).await
    }

    /// Waits for job `id` and panics with its failed tasks' logs unless it SUCCEEDED.
    pub async fn expect_success(&self, id: i64) -> Value {
        self.api.expect_success(id, JOB_TIMEOUT).await
    }

    /// Stops and removes a service's units, and checks nothing listens on `port` of hosts
    /// 1..=`hosts` any more.
    pub async fn stop_and_remove(&self, service: &str, port: u16, hosts: usize) {
        self.run("stop", json!({ "service": service })).await;
        self.run("remove", json!({ "service": service })).await;
        for i in 1..=hosts {
            let addr = format!("{}:{port}", address(i));
            assert!(!listening(&addr).await, "{service}: {addr} still listens");
        }
    }

    /// Asserts that no unit of the cluster is stale.
    pub async fn assert_nothing_stale(&self) {
        let units = self.api.get("/clusters/c/units").await;
        let stale = |u: &&Value| u["stale"] != false;
        let stale: Vec<&Value> = units
            .expect(200)
            .as_array()
            .unwrap()
            .iter()
            .filter(stale)
            .collect();
        assert!(stale.is_empty(), "stale units: {stale:?}");
    }

    /// The unit ids of a service, by host name.
    pub async fn units(&self, service: &str) -> Vec<(String, i64, Value)> {
        let s = self
            .api
            .get(&format!("/clusters/c/services/{service}"))
            .await;
        s.expect(200)["units"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                (
                    u["host"].as_str().unwrap().to_string(),
                    u["id"].as_i64().unwrap(),
                    u.clone(),
                )
            })
            .collect()
    }
}

/// The loopback address of `h<i>`.
pub fn address(i: usize) -> String {
    format!("127.0.0.{}", i + 1)
}

/// Sends a ZooKeeper four-letter word and returns the answer ("" if nobody answers).
async fn four_letter(addr: &str, word: &str) -> String {
    let Ok(Ok(mut s)) =
        tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(addr)).await
    else {
        return String::new();
    };
    if s.write_all(word.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut out = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_string(&mut out)).await;
    out
}

/// Each ZooKeeper server's mode (`leader`, `follower`, `standalone`), or "" if it does not
/// answer.
async fn zk_modes(hosts: &[usize]) -> Vec<String> {
    let mut out = Vec::new();
    for &i in hosts {
        let a = four_letter(&format!("{}:2181", address(i)), "srvr").await;
        let mode = a
            .lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .unwrap_or_default()
            .trim()
            .to_string();
        out.push(mode);
    }
    out
}

/// Waits until the servers on `hosts` are one leader and the rest followers.
pub async fn one_leader(hosts: &[usize]) -> Vec<String> {
    wait_until(
        "one ZooKeeper leader and the rest followers",
        Duration::from_secs(60),
        || async {
            let mut modes = zk_modes(hosts).await;
            modes.sort();
            let leaders = modes.iter().filter(|m| *m == "leader").count();
            let followers = modes.iter().filter(|m| *m == "follower").count();
            (leaders == 1 && followers == hosts.len() - 1).then_some(modes)
        },
    )
    .await
}

/// The line `key=…` of a rendered file.
fn setting(path: &std::path::Path, key: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {}:\n{text}", path.display()))
        .trim()
        .to_string()
}

/// True if something accepts connections on `addr`.
async fn listening(addr: &str) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// Runs a client command and returns its stdout, panicking with stderr if it fails.
fn client(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Issue 5, tests 1 and 6: a 3-node ZooKeeper ensemble from nothing — one leader, two
/// followers; a tickTime change makes the units stale, the restart job applies it on every
/// host and a rollback restores it on disk; one node stopped keeps a quorum and the check
/// passes; remove cleans up.
#[tokio::test]
async fn zookeeper_ensemble_deploys_changes_configs_keeps_quorum_and_cleans_up() {
    let d = Deployment::deployed(
        3,
        json!({
            "name": "zk", "stack": "bigtop", "service": "zookeeper",
            "placement": {"zookeeper_server": ["h1", "h2", "h3"], "zookeeper_client": ["h1"]},
        }),
    )
    .await;
    one_leader(&[1, 2, 3]).await;
    let zoo_cfg = |i: usize| d.unit_dir(i, "zk", "zookeeper_server").join("conf/zoo.cfg");
    for i in 1..=3 {
        assert_eq!(setting(&zoo_cfg(i), "tickTime"), "2000");
        let cfg = std::fs::read_to_string(zoo_cfg(i)).unwrap();
        for j in 1..=3 {
            assert!(
                cfg.contains(&format!("={}:2888:3888", address(j))),
                "zoo.cfg on h{i} lists every peer:\n{cfg}"
            );
        }
    }

    // Test 6: change tickTime.
    let v2 = d
        .api
        .patch(
            "/clusters/c/services/zk/configs",
            json!({"configs": {"zoo.cfg": {"tickTime": 3000}}, "message": "slower ticks"}),
        )
        .await;
    assert_eq!(v2.expect(201)["version"], 2);
    assert_eq!(v2.body["author"], "admin");
    let units = d.api.get("/clusters/c/units").await;
    let servers: Vec<&Value> = units
        .expect(200)
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["component"] == "zookeeper_server")
        .collect();
    assert_eq!(servers.len(), 3);
    for u in &servers {
        assert_eq!(u["stale"], true, "{u}");
        assert!(
            u["stale_reason"].as_str().unwrap().contains("version 2"),
            "{u}"
        );
    }
    let diff = d
        .api
        .get("/clusters/c/services/zk/configs/diff?from=1&to=2")
        .await;
    assert_eq!(
        diff.expect(200),
        &json!([{"config_type": "zoo.cfg", "host": null, "property": "tickTime",
                 "from": null, "to": 3000}])
    );
    // Nothing ran yet: the files still say 2000.
    assert_eq!(setting(&zoo_cfg(1), "tickTime"), "2000");
    restart_stale(&d).await;
    for i in 1..=3 {
        assert_eq!(setting(&zoo_cfg(i), "tickTime"), "3000", "h{i}");
    }
    one_leader(&[1, 2, 3]).await;
    d.assert_nothing_stale().await;
    // Rollback to version 1 is version 3, applied the same way.
    let v3 = d
        .api
        .post("/clusters/c/services/zk/configs/rollback", json!({"to": 1}))
        .await;
    assert_eq!(v3.expect(201)["version"], 3);
    assert_eq!(v3.body["message"], "rollback to version 1");
    restart_stale(&d).await;
    for i in 1..=3 {
        assert_eq!(setting(&zoo_cfg(i), "tickTime"), "2000", "h{i}");
    }
    let versions = d.api.get("/clusters/c/services/zk/configs").await;
    assert_eq!(versions.expect(200).as_array().unwrap().len(), 3);

    // Test 1 continued: stop one node; the other two keep a quorum and the check passes.
    let (_, h3_unit, _) = d
        .units("zk")
        .await
        .into_iter()
        .find(|(h, _, u)| h == "h3" && u["component"] == "zookeeper_server")
        .unwrap();
    d.run("stop", json!({"units": [h3_unit]})).await;
    assert_eq!(zk_modes(&[3]).await, vec![String::new()]);
    one_leader(&[1, 2]).await;
    d.run("check", json!({"service": "zk"})).await;

    // Remove cleans up: daemons gone, ports closed, unit data gone.
    d.run("stop", json!({"service": "zk"})).await;
    d.run("remove", json!({"service": "zk"})).await;
    d.api.delete("/clusters/c/services/zk").await.expect(204);
    for i in 1..=3 {
        assert!(!listening(&format!("{}:2181", address(i))).await, "h{i}");
        let dir = d.unit_dir(i, "zk", "zookeeper_server");
        assert!(
            !dir.join("data").exists() && !dir.join("zookeeper_server.pid").exists(),
            "h{i}: {:?}",
            std::fs::read_dir(&dir).map(|r| r.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
        );
    }
}

/// Submits restart-stale and waits for every job it started.
async fn restart_stale(d: &Deployment) {
    let jobs = d.api.post("/clusters/c/restart-stale", json!({})).await;
    let jobs = jobs.expect(202).as_array().unwrap().clone();
    assert!(!jobs.is_empty(), "something was stale");
    for j in jobs {
        d.expect_success(j["id"].as_i64().unwrap()).await;
    }
}

/// Issue 5, test 7: bad input is refused with a clear error before anything runs — a config
/// value of the wrong type, a relation between mismatched interfaces, a template naming an
/// unknown variable.
#[tokio::test]
async fn bad_configs_relations_and_templates_are_refused_before_anything_runs() {
    // A copy of the shipped zookeeper whose template names a variable nobody sets.
    let stacks = tempfile::tempdir().unwrap();
    let dst = stacks.path().join("broken");
    copy_dir(&stacks_dir().join("bigtop"), &dst);
    for entry in std::fs::read_dir(dst.join("3.3.0/zookeeper/templates")).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name().unwrap() == "zoo.cfg.hbs" {
            let t = std::fs::read_to_string(&p).unwrap();
            std::fs::write(&p, format!("{t}\nsnapCount={{{{snapshotEvery}}}}\n")).unwrap();
        }
    }
    let server = ServerProc::serve().stacks(stacks.path()).start();
    let api = server.api();
    api.create_cluster("c").await;
    for (i, h) in ["h1", "h2", "h3"].iter().enumerate() {
        api.add_host("c", h, &address(i + 1)).await;
    }
    let placement = json!({"zookeeper_server": ["h1", "h2", "h3"]});

    // The template names an unknown variable: refused when the service is added.
    let r = api
        .post(
            "/clusters/c/services",
            json!({"name": "zk", "stack": "broken", "service": "zookeeper", "placement": placement}),
        )
        .await;
    let problem = r.problem(422);
    assert_contains(&problem, "snapshotEvery");
    assert_eq!(
        api.get("/clusters/c/services").await.expect(200)["items"],
        json!([])
    );

    // The shipped one is fine; a wrong-typed value is refused, naming property and type.
    let zk =
        json!({"name": "zk", "stack": "bigtop", "service": "zookeeper", "placement": placement});
    api.add_service("c", zk).await;
    let r = api
        .patch(
            "/clusters/c/services/zk/configs",
            json!({"configs": {"zoo.cfg": {"tickTime": "fast"}}}),
        )
        .await;
    let problem = r.problem(422);
    assert_contains(&problem, "tickTime");
    let versions = api.get("/clusters/c/services/zk/configs").await;
    assert_eq!(versions.expect(200).as_array().unwrap().len(), 1);

    // A relation between mismatched interfaces: prometheus requires prometheus-scrape,
    // zookeeper provides zookeeper.
    let prom = json!({"name": "prom", "stack": "infra", "service": "prometheus",
                      "placement": {"prometheus_server": ["h1"]}});
    api.add_service("c", prom).await;
    let problem = api.relate("c", "prom", "zk").await.problem(422);
    assert!(
        problem.contains("prometheus-scrape") && problem.contains("zookeeper"),
        "{problem}"
    );
    assert_eq!(
        api.get("/clusters/c/relations").await.expect(200),
        &json!([])
    );
    // Nothing ran.
    assert_eq!(
        api.get("/clusters/c/jobs").await.expect(200)["items"],
        json!([])
    );
}

/// Prometheus' active targets: `(instance, health)`, sorted.
pub async fn prometheus_targets(addr: &str) -> Vec<(String, String)> {
    let Ok(res) = reqwest::get(format!("http://{addr}/api/v1/targets?state=active")).await else {
        return Vec::new();
    };
    let Ok(body) = res.json::<Value>().await else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = body["data"]["activeTargets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["labels"]["instance"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                t["health"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Waits until Prometheus scrapes exactly itself and node_exporter on `hosts`, all up.
async fn targets_up(prom: &str, hosts: &[usize]) {
    let addresses: Vec<String> = hosts.iter().map(|&i| address(i)).collect();
    targets_up_at(prom, &addresses).await;
}

/// Waits until Prometheus scrapes exactly itself and node_exporter on `addresses`, all up.
async fn targets_up_at(prom: &str, addresses: &[String]) {
    let mut want: Vec<(String, String)> = addresses
        .iter()
        .map(|a| (format!("{a}:9100"), "up".to_string()))
        .chain([(prom.to_string(), "up".to_string())])
        .collect();
    want.sort();
    wait_until(
        &format!("Prometheus targets {want:?}"),
        Duration::from_secs(60),
        || async {
            let got = prometheus_targets(prom).await;
            (got == want).then_some(())
        },
    )
    .await;
}

/// The automatic job the latest event of relation `id` started; waits for it to succeed.
async fn auto_job(d: &Deployment, rel: i64, kind: &str) -> i64 {
    let events = d
        .api
        .list(&format!("/clusters/c/relations/{rel}/events"))
        .await;
    let last = events.last().expect("an event");
    assert_eq!(last["kind"], kind, "{events:?}");
    assert_eq!(last["service"], "prom", "{events:?}");
    let job = last["job"]
        .as_i64()
        .unwrap_or_else(|| panic!("no automatic job: {events:?}"));
    let done = d.expect_success(job).await;
    assert_eq!(done["command"], "reconfigure");
    job
}

/// Issue 5, test 5: Prometheus with node_exporter on every host, all targets up; a 4th host's
/// node_exporter appears as a target without anyone touching Prometheus's config, and goes
/// when its unit is removed.
#[tokio::test]
async fn prometheus_follows_node_exporters_through_the_relation() {
    let mut d = Deployment::start(4).await;
    d.add_service(json!({
        "name": "nodes", "stack": "infra", "service": "node_exporter",
        "placement": {"node_exporter": ["h1", "h2", "h3"]},
    }))
    .await;
    d.add_service(json!({
        "name": "prom", "stack": "infra", "service": "prometheus",
        "placement": {"prometheus_server": ["h1"]},
        "configs": {"prometheus.yml": {"scrape_interval": "1s", "scrape_timeout": "1s",
                                       "evaluation_interval": "5s"}},
    }))
    .await;
    let rel = d.api.relate("c", "prom", "nodes").await;
    let rel_id = rel.expect(201)["id"].as_i64().unwrap();
    assert_eq!(rel.body["interface"], "prometheus-scrape");
    d.run("deploy", json!({"service": "nodes"})).await;
    d.run("deploy", json!({"service": "prom"})).await;
    let prom = format!("{}:9090", address(1));
    targets_up(&prom, &[1, 2, 3]).await;
    let prom_yml = d
        .unit_dir(1, "prom", "prometheus_server")
        .join("conf/prometheus.yml");
    let before = std::fs::read_to_string(&prom_yml).unwrap();

    // A 4th host's node_exporter: the relation re-renders prometheus.yml and an automatic
    // job reconfigures Prometheus.
    let added = d
        .api
        .post(
            "/clusters/c/services/nodes/units",
            json!({"component": "node_exporter", "hosts": ["h4"]}),
        )
        .await;
    let h4_unit = added.expect(201)[0]["id"].as_i64().unwrap();
    auto_job(&d, rel_id, "joined").await;
    d.run("deploy", json!({"units": [h4_unit]})).await;
    targets_up(&prom, &[1, 2, 3, 4]).await;
    let after = std::fs::read_to_string(&prom_yml).unwrap();
    assert!(!before.contains("127.0.0.5:9100") && after.contains("127.0.0.5:9100"));

    // Removing the unit takes the target away the same way.
    d.run("stop", json!({"units": [h4_unit]})).await;
    d.run("remove", json!({"units": [h4_unit]})).await;
    d.api
        .delete(&format!("/clusters/c/units/{h4_unit}"))
        .await
        .expect(204);
    auto_job(&d, rel_id, "broken").await;
    targets_up(&prom, &[1, 2, 3]).await;
    assert!(
        !std::fs::read_to_string(&prom_yml)
            .unwrap()
            .contains("127.0.0.5:9100")
    );

    // h3's agent comes back on another address: the host keeps its address (an agent never
    // changes it) and shows the reported one, with an audit row, until an admin accepts it.
    // Then node_exporter there and Prometheus's target follow, by automatic jobs ("changed"
    // on the relation).
    d.agents[2].proc.signal(nix::sys::signal::Signal::SIGKILL);
    d.agents[2].proc.wait_exit(Duration::from_secs(10));
    let moved = AgentProc::cmd(&d.server.url, "h3", "127.0.0.6")
        .root(&d.root(3))
        .start();
    let old = address(3);
    wait_until(
        "h3 back, its new address reported",
        Duration::from_secs(30),
        || async {
            let h = d.api.get("/clusters/c/hosts/h3").await;
            (h.body["state"] == "ONLINE" && h.body["reported_address"] == "127.0.0.6").then_some(())
        },
    )
    .await;
    assert_eq!(d.api.get("/clusters/c/hosts/h3").await.body["address"], old);
    let audit = d.api.get("/audit?actor=agent:h3").await;
    assert!(
        audit.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["outcome"] == "refused"
                && e["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("127.0.0.6")),
        "the agent's report is audited: {}",
        audit.body
    );
    let accepted = d
        .api
        .patch("/clusters/c/hosts/h3", json!({"address": "127.0.0.6"}))
        .await;
    assert_eq!(accepted.expect(200)["address"], "127.0.0.6");
    assert_eq!(accepted.body["reported_address"], Value::Null);
    let changed = wait_until(
        "a 'changed' event with its job",
        Duration::from_secs(30),
        || async {
            let events = d
                .api
                .get(&format!("/clusters/c/relations/{rel_id}/events"))
                .await;
            let last = events.body.as_array()?.last()?.clone();
            (last["kind"] == "changed" && last["job"].is_i64()).then_some(last)
        },
    )
    .await;
    assert_eq!(changed["service"], "prom");
    d.expect_success(changed["job"].as_i64().unwrap()).await;
    targets_up_at(&prom, &[address(1), address(2), "127.0.0.6".to_string()]).await;
    wait_until("no stale unit", Duration::from_secs(60), || async {
        let units = d.api.get("/clusters/c/units").await;
        units
            .body
            .as_array()?
            .iter()
            .all(|u| u["stale"] == false)
            .then_some(())
    })
    .await;
    drop(moved);
    d.assert_nothing_stale().await;
}

/// Issue 5, test 2: Redis primary + 2 replicas (peer relation): a key written to the primary
/// is read from each replica. Port 6380: the machine's own Redis has 6379 on 127.0.0.1.
/// Issue 14, test 5: Prometheus from the infra stack scrapes bigmgr's own `GET /metrics` with
/// a viewer's token, and a query for jobs by state answers what the API says.
#[tokio::test]
async fn prometheus_scrapes_bigmgr_itself() {
    let d = Deployment::start(1).await;
    d.api
        .post(
            "/users",
            json!({"name": "scraper", "role": "viewer", "password": "scrape-pass-1"}),
        )
        .await
        .expect(201);
    let login = d
        .api
        .with_token(None)
        .post(
            "/login",
            json!({"name": "scraper", "password": "scrape-pass-1"}),
        )
        .await;
    let token = login.expect(201)["token"].as_str().unwrap().to_string();
    let target = d.server.url.trim_start_matches("http://").to_string();
    d.add_service(json!({
        "name": "prom", "stack": "infra", "service": "prometheus",
        "placement": {"prometheus_server": ["h1"]},
        "configs": {"prometheus.yml": {"scrape_interval": "1s", "scrape_timeout": "1s",
                                       "evaluation_interval": "5s",
                                       "bigmgr_target": target, "bigmgr_token": token}},
    }))
    .await;
    d.run("deploy", json!({"service": "prom"})).await;
    d.run("status", json!({"service": "prom"})).await;
    let prom = format!("{}:9090", address(1));
    let succeeded = d.api.list("/clusters/c/jobs?state=SUCCEEDED").await.len();
    assert_eq!(succeeded, 2);
    // The token reached Prometheus masked nowhere but its own file; the API shows it masked.
    let v = d.api.get("/clusters/c/services/prom").await;
    assert_eq!(
        v.expect(200)["configs"]["prometheus.yml"]["bigmgr_token"],
        "********"
    );
    let query =
        format!("http://{prom}/api/v1/query?query=bigmgr_jobs%7Bstate%3D%22SUCCEEDED%22%7D");
    let value = wait_until(
        "Prometheus to answer bigmgr_jobs{state=\"SUCCEEDED\"} = 2",
        Duration::from_secs(60),
        || async {
            let body: Value = reqwest::get(&query).await.ok()?.json().await.ok()?;
            let v = body["data"]["result"][0]["value"][1].as_str()?.to_string();
            (v == "2").then_some(v)
        },
    )
    .await;
    assert_eq!(value, "2");
    let targets = prometheus_targets(&prom).await;
    assert!(
        targets.contains(&(target.clone(), "up".to_string())),
        "{targets:?}"
    );
}

#[tokio::test]
async fn redis_replicas_serve_what_the_primary_wrote() {
    let d = Deployment::deployed(
        3,
        json!({
            "name": "cache", "stack": "extra", "service": "redis",
            "placement": {"redis_primary": ["h1"], "redis_replica": ["h2", "h3"]},
            "configs": {"redis.conf": {"port": 6380}},
        }),
    )
    .await;
    let value = format!("v{}", std::process::id());
    let set = client(
        "redis-cli",
        &[
            "-h",
            &address(1),
            "-p",
            "6380",
            "SET",
            "bigmgr:test",
            &value,
        ],
    );
    assert_eq!(set.trim(), "OK");
    for i in [2, 3] {
        let h = address(i);
        let info = client(
            "redis-cli",
            &["-h", &h, "-p", "6380", "INFO", "replication"],
        );
        assert!(info.contains("role:slave"), "h{i}: {info}");
        wait_until(
            &format!("the key on replica h{i}"),
            Duration::from_secs(20),
            || async {
                let got = client("redis-cli", &["-h", &h, "-p", "6380", "GET", "bigmgr:test"]);
                (got.trim() == value).then_some(())
            },
        )
        .await;
        let info = client(
            "redis-cli",
            &["-h", &h, "-p", "6380", "INFO", "replication"],
        );
        assert!(info.contains("master_link_status:up"), "h{i}: {info}");
    }
    d.stop_and_remove("cache", 6380, 3).await;
}

/// Issue 5, test 3: etcd with 3 members, all healthy; a key put on one is got from another.
#[tokio::test]
async fn etcd_members_form_one_cluster() {
    let d = Deployment::deployed(
        3,
        json!({
            "name": "kv", "stack": "extra", "service": "etcd",
            "placement": {"etcd_server": ["h1", "h2", "h3"]},
        }),
    )
    .await;
    let endpoints: Vec<String> = (1..=3)
        .map(|i| format!("http://{}:2379", address(i)))
        .collect();
    let etcdctl = |args: &[&str]| {
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(args)
            .output()
            .expect("etcdctl");
        assert!(
            out.status.success(),
            "etcdctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let all = endpoints.join(",");
    let health = etcdctl(&["--endpoints", &all, "endpoint", "health"]);
    assert_eq!(
        health.matches("is healthy").count(),
        3,
        "every member healthy:\n{health}"
    );
    let members = etcdctl(&["--endpoints", &endpoints[0], "member", "list"]);
    assert_eq!(
        members.lines().filter(|l| l.contains("started")).count(),
        3,
        "{members}"
    );
    etcdctl(&[
        "--endpoints",
        &endpoints[0],
        "put",
        "bigmgr-test",
        "from-h1",
    ]);
    let got = etcdctl(&[
        "--endpoints",
        &endpoints[2],
        "get",
        "bigmgr-test",
        "--print-value-only",
    ]);
    assert_eq!(got.trim(), "from-h1");
    d.stop_and_remove("kv", 2379, 3).await;
}

/// Issue 5, test 4: MariaDB primary + replica: a row inserted on the primary appears on the
/// replica. Port 3307: the machine's own MariaDB has 3306 on 127.0.0.1.
#[tokio::test]
async fn mariadb_replica_gets_the_primarys_rows() {
    let d = Deployment::start(2).await;
    d.add_service(json!({
        "name": "db", "stack": "extra", "service": "mariadb",
        "placement": {"mariadb_primary": ["h1"], "mariadb_replica": ["h2"]},
        "configs": {"my.cnf": {"port": 3307, "replication_password": "t0p-secret"}},
    }))
    .await;
    // The secret is stored but never shown.
    let shown = d.api.get("/clusters/c/services/db").await;
    assert_eq!(
        shown.expect(200)["configs"]["my.cnf"]["replication_password"],
        "********"
    );
    assert!(!shown.text.contains("t0p-secret"));
    // The replicas' replication check, sooner than the stack's 10 s and 30 s.
    d.api
        .put(
            "/clusters/c/alert-definitions/mariadb.replication",
            json!({"for": "0s", "interval": "2s"}),
        )
        .await
        .expect(200);
    d.run("deploy", json!({"service": "db"})).await;
    // As root over each unit's own socket (unix_socket authentication).
    let sql = |i: usize, component: &str, query: &str| {
        let sock = d.unit_dir(i, "db", component).join("run/mariadb.sock");
        client(
            "mariadb",
            &[
                "--no-defaults",
                "--protocol=socket",
                &format!("--socket={}", sock.display()),
                "-u",
                "root",
                "-e",
                query,
            ],
        )
    };
    let marker = format!("row-{}", std::process::id());
    sql(
        1,
        "mariadb_primary",
        &format!(
            "CREATE DATABASE IF NOT EXISTS t; CREATE TABLE IF NOT EXISTS t.r (v VARCHAR(64)); \
             INSERT INTO t.r VALUES ('{marker}')"
        ),
    );
    wait_until(
        "the row on the replica",
        Duration::from_secs(30),
        || async {
            let out = Command::new("mariadb")
                .args([
                    "--no-defaults",
                    "--protocol=socket",
                    &format!(
                        "--socket={}",
                        d.unit_dir(2, "db", "mariadb_replica")
                            .join("run/mariadb.sock")
                            .display()
                    ),
                    "-u",
                    "root",
                    "-N",
                    "-B",
                    "-e",
                    "SELECT v FROM t.r",
                ])
                .output()
                .ok()?;
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l == marker)
                .then_some(())
        },
    )
    .await;
    let status = sql(2, "mariadb_replica", "SHOW SLAVE STATUS\\G");
    assert!(
        status.contains("Slave_IO_Running: Yes") && status.contains("Slave_SQL_Running: Yes"),
        "{status}"
    );
    assert_contains(&status, format!("Master_Host: {}", address(1)));
    // The replica's replication alert reads the same status: OK, then CRITICAL once the
    // primary is stopped, which the advisor turns into `replica.not_replicating`.
    // Waits for the alert in `state` with a text saying `says` (before the replica's first
    // check, the alert is OK with "not checked").
    let alert = |state: &'static str, says: String| {
        let api = &d.api;
        async move {
            wait_until(
                &format!("mariadb.replication {state}: {says}"),
                Duration::from_secs(60),
                || async {
                    api.list("/clusters/c/alerts?service=db")
                        .await
                        .into_iter()
                        .find(|a| {
                            a["definition"] == "mariadb.replication"
                                && a["state"] == state
                                && a["text"].as_str().is_some_and(|t| t.contains(&says))
                        })
                },
            )
            .await
        }
    };
    alert(
        "OK",
        format!(
            "replicating from primary {}:3307: Slave_IO_Running=Yes",
            address(1)
        ),
    )
    .await;
    let primary = d
        .units("db")
        .await
        .into_iter()
        .find(|(h, _, _)| h == "h1")
        .map(|(_, id, _)| id)
        .expect("the primary");
    d.run("stop", json!({"units": [primary]})).await;
    // The IO thread reads Connecting (or No) while the primary is gone.
    let critical = alert("CRITICAL", "not replicating: Slave_IO_Running=".into()).await;
    assert_contains(
        critical["text"].as_str().unwrap_or_default(),
        format!("from primary {}:3307", address(1)),
    );
    let advice = d.api.list("/clusters/c/advice?service=db").await;
    let found: Vec<&Value> = advice
        .iter()
        .filter(|f| f["rule"] == "replica.not_replicating")
        .collect();
    assert_eq!(found.len(), 1, "{advice:#?}");
    assert_eq!(
        found[0]["actions"][0]["body"],
        json!({"command": "start", "target": {"units": [primary]}}),
        "{:#}",
        found[0]
    );
    d.stop_and_remove("db", 3307, 2).await;
}

/// Prometheus sends its alerts to Alertmanager through the relation (interface
/// alertmanager): Alertmanager on h2 and h3 (one gossip cluster), Prometheus on h1 with a rule
/// that always fires, both deployed unrelated. Relating them re-renders prometheus.yml and an
/// automatic job reconfigures Prometheus; Prometheus then lists both Alertmanagers as active,
/// an alert posted to the v2 API is read back, the rule's alert reaches both, and the stacks'
/// checks pass. A duration that would break out of its YAML quotes is refused by configure and
/// the running Alertmanager keeps its configuration.
#[tokio::test]
async fn prometheus_sends_alerts_to_alertmanager_through_the_relation() {
    /// Prometheus' active Alertmanagers (their URLs), sorted.
    async fn active_alertmanagers(prom: &str) -> Vec<String> {
        let url = format!("http://{prom}/api/v1/alertmanagers");
        let Ok(res) = reqwest::get(url).await else {
            return Vec::new();
        };
        let body: Value = res.json().await.unwrap_or_default();
        let mut urls: Vec<String> = body["data"]["activeAlertmanagers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["url"].as_str().map(str::to_string))
            .collect();
        urls.sort();
        urls
    }
    /// The alerts named `name` that the Alertmanager at `am` holds.
    async fn alerts_named(am: &str, name: &str) -> Vec<Value> {
        let url = format!("http://{am}/api/v2/alerts");
        let Ok(res) = reqwest::get(url).await else {
            return Vec::new();
        };
        let body: Value = res.json().await.unwrap_or_default();
        body.as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["labels"]["alertname"] == name)
            .cloned()
            .collect()
    }

    let d = Deployment::start(3).await;
    let rules = json!({"groups": [{"name": "bigmgr", "rules": [
        {"alert": "BigmgrAlwaysFiring", "expr": "vector(1)", "labels": {"severity": "none"}},
    ]}]});
    d.add_service(json!({
        "name": "prom", "stack": "infra", "service": "prometheus",
        "placement": {"prometheus_server": ["h1"]},
        "configs": {"prometheus.yml": {"scrape_interval": "1s", "scrape_timeout": "1s",
                                       "evaluation_interval": "1s",
                                       "alert_rules": rules.to_string()},
                    // An alert fired before Prometheus found the Alertmanagers is sent again
                    // after this delay (default 1m).
                    "prometheus-env": {"extra_args": "--rules.alert.resend-delay=2s"}},
    }))
    .await;
    d.add_service(json!({
        "name": "am", "stack": "infra", "service": "alertmanager",
        "placement": {"alertmanager_server": ["h2", "h3"]},
        "configs": {"alertmanager.yml": {"group_wait": "1s"}},
    }))
    .await;
    d.run("deploy", json!({"service": "am"})).await;
    d.run("deploy", json!({"service": "prom"})).await;
    let prom = format!("{}:9090", address(1));
    let ams = [
        format!("{}:9093", address(2)),
        format!("{}:9093", address(3)),
    ];
    let prom_yml = d
        .unit_dir(1, "prom", "prometheus_server")
        .join("conf/prometheus.yml");
    assert!(
        !std::fs::read_to_string(&prom_yml)
            .unwrap()
            .contains("alertmanagers:")
    );
    assert_eq!(active_alertmanagers(&prom).await, Vec::<String>::new());

    // Prometheus requires two interfaces; the one Alertmanager provides picks the endpoint.
    let rel = d.api.relate("c", "prom", "am").await;
    let rel_id = rel.expect(201)["id"].as_i64().unwrap();
    assert_eq!(rel.body["interface"], "alertmanager");
    assert_eq!(rel.body["requirer_endpoint"], "alerting");
    assert_eq!(rel.body["provider_endpoint"], "alerting");
    // Only Prometheus's files changed: an automatic job reconfigures it, none touches am.
    let events = d
        .api
        .list(&format!("/clusters/c/relations/{rel_id}/events"))
        .await;
    let job = |service: &str| {
        events
            .iter()
            .find(|e| e["kind"] == "joined" && e["service"] == service)
            .unwrap_or_else(|| panic!("no joined event for {service}: {events:?}"))["job"]
            .as_i64()
    };
    assert_eq!(job("am"), None, "{events:?}");
    let reconfigure = job("prom").unwrap_or_else(|| panic!("no automatic job: {events:?}"));
    let done = d.expect_success(reconfigure).await;
    assert_eq!(done["command"], "reconfigure");
    let rendered = std::fs::read_to_string(&prom_yml).unwrap();
    for am in &ams {
        assert_contains(&rendered, format!("- '{am}'"));
    }

    // (a) Prometheus discovered both through its new configuration.
    let want: Vec<String> = ams
        .iter()
        .map(|a| format!("http://{a}/api/v2/alerts"))
        .collect();
    wait_until(
        &format!("Prometheus' active Alertmanagers {want:?}"),
        Duration::from_secs(60),
        || async { (active_alertmanagers(&prom).await == want).then_some(()) },
    )
    .await;

    // (b) An alert posted to h2's v2 API is read back from it.
    let posted = reqwest::Client::new()
        .post(format!("http://{}/api/v2/alerts", ams[0]))
        .json(
            &json!([{"labels": {"alertname": "bigmgr_test", "cluster": "c"},
                        "annotations": {"summary": "posted by the bigmgr test"}}]),
        )
        .send()
        .await
        .unwrap();
    assert!(posted.status().is_success(), "{}", posted.status());
    let got = wait_until("the posted alert", Duration::from_secs(10), || async {
        alerts_named(&ams[0], "bigmgr_test").await.pop()
    })
    .await;
    assert_eq!(got["labels"]["cluster"], "c");
    assert_eq!(got["annotations"]["summary"], "posted by the bigmgr test");
    assert_eq!(got["status"]["state"], "active");

    // (c) The rule's alert reaches both through Prometheus, with its external label.
    for am in &ams {
        let alert = wait_until(
            &format!("BigmgrAlwaysFiring at {am}"),
            Duration::from_secs(60),
            || async { alerts_named(am, "BigmgrAlwaysFiring").await.pop() },
        )
        .await;
        assert_eq!(alert["labels"]["cluster"], "c", "{alert}");
        assert_eq!(alert["labels"]["severity"], "none", "{alert}");
    }

    // The stacks' own status and checks: the two gossip as one cluster, Prometheus sees both.
    d.run("status", json!({"service": "am"})).await;
    d.run("check", json!({"service": "am"})).await;
    d.run("check", json!({"service": "prom"})).await;
    let status: Value = reqwest::get(format!("http://{}/api/v2/status", ams[1]))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["cluster"]["status"], "ready", "{status}");
    assert_eq!(status["cluster"]["peers"].as_array().unwrap().len(), 2);
    d.assert_nothing_stale().await;

    // Bad input: a duration with a quote of its own stays one YAML scalar, and configure
    // refuses it, naming it; the daemons keep running what they had.
    let bad = "5m', receivers: x";
    d.api
        .patch(
            "/clusters/c/services/am/configs",
            json!({"configs": {"alertmanager.yml": {"resolve_timeout": bad}}}),
        )
        .await
        .expect(201);
    let id = d
        .api
        .submit("c", "configure", json!({"service": "am"}))
        .await;
    let failed = d.api.wait_job(id, JOB_TIMEOUT).await;
    assert_eq!(failed["state"], "FAILED", "{failed}");
    let task = &failed["stages"][0]["tasks"][0];
    let log = d
        .api
        .get(&format!("/jobs/{id}/tasks/{}/log", task["id"]))
        .await;
    assert_contains(
        &log.text,
        "resolve_timeout '5m', receivers: x' is not a duration",
    );
    for am in &ams {
        let status: Value = reqwest::get(format!("http://{am}/api/v2/status"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let running = status["config"]["original"].as_str().unwrap();
        assert_contains(running, "resolve_timeout: 5m");
    }
}
