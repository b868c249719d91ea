//! Integration tests: store — the conformance suite on SqlStore (memory and file, whole and part
//! by part), persistence across reopening, and a printed measurement of large jobs and batches.

use bigmgr_core::model::*;
use bigmgr_core::store::{
    AuditStore, AuthStore, Batch, ClusterStore, ConfigStore, JobStore, ServiceStore, SqlStore,
    Store, TaskChange, conformance,
};
use bigmgr_test_support::assert_contains;
use std::sync::Arc;
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_in_memory() {
    let store = SqlStore::open("sqlite::memory:").await.expect("open");
    conformance::run(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("bigmgr.db").display());
    let store = SqlStore::open(&url).await.expect("open");
    conformance::run(&store).await;
}

/// Each part of the suite runs on its own on a fresh store, against a store of the traits it
/// needs: a concrete store, a `&dyn Store`, or a trait object of one part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_parts_run_alone() {
    let fresh = || async { SqlStore::open("sqlite::memory:").await.expect("open") };
    conformance::clusters::run(&fresh().await).await;
    let store: Arc<dyn Store> = Arc::new(fresh().await);
    conformance::services::run(store.as_ref()).await;
    conformance::configs::run(&fresh().await).await;
    conformance::jobs::run(&fresh().await).await;
    conformance::agents::run(&fresh().await).await;
    let store = fresh().await;
    let auth: &dyn AuthStore = &store;
    conformance::auth::run(auth).await;
    let audit: Arc<dyn AuditStore> = Arc::new(fresh().await);
    conformance::audit::run(audit.as_ref()).await;
    conformance::alerts::run(&fresh().await).await;
    conformance::assistant::run(&fresh().await).await;
}

/// The whole suite on PostgreSQL, in a schema of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_postgres() {
    let schema = bigmgr_test_support::PgSchema::create("conformance");
    let store = SqlStore::open(&schema.url()).await.expect("open");
    assert_eq!(store.engine(), bigmgr_core::store::Engine::Postgres);
    conformance::run(&store).await;
    store.close().await;
}

/// The engine's lease on PostgreSQL: one holder at a time, taken over only once expired (with
/// a new epoch), and a write fenced by the old epoch is refused and leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_fenced_by_a_lost_lease_is_refused_and_writes_nothing() {
    use bigmgr_core::store::Fence;
    use std::time::Duration;
    let schema = bigmgr_test_support::PgSchema::create("fence");
    let store = SqlStore::open(&schema.url()).await.expect("open");
    let short = Duration::from_millis(800);
    assert_eq!(
        store.acquire_lease("a", short).await.expect("lease"),
        Some(1)
    );
    let a = Fence::new("a");
    let fenced = store.fenced(a.clone());
    let err = fenced.create_cluster("early").await.unwrap_err();
    assert!(
        matches!(err, bigmgr_core::Error::Fenced(_)),
        "epoch 0 holds nothing: {err:?}"
    );
    a.set_epoch(1);
    fenced
        .create_cluster("before")
        .await
        .expect("a write while holding the lease");
    assert_eq!(
        store.acquire_lease("b", short).await.expect("lease"),
        None,
        "a holds it"
    );
    assert_eq!(
        store.acquire_lease("a", short).await.expect("renew"),
        Some(1),
        "same epoch"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        store
            .acquire_lease("b", Duration::from_secs(30))
            .await
            .expect("lease"),
        Some(2),
        "expired: b takes it at a new epoch"
    );
    let err = fenced.create_cluster("after").await.unwrap_err();
    assert!(matches!(err, bigmgr_core::Error::Fenced(_)), "{err:?}");
    assert_contains(err.to_string(), "epoch 2");
    let before = store
        .cluster_by_name("before")
        .await
        .expect("read")
        .expect("kept");
    let err = fenced.delete_cluster(before.id).await.unwrap_err();
    assert!(matches!(err, bigmgr_core::Error::Fenced(_)), "{err:?}");
    let names: Vec<String> = store
        .list_clusters()
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["before"], "nothing fenced was written");
    assert!(
        !store.renew_lease("a", 1, short).await.expect("renew"),
        "a lost it"
    );
    let lease = store.lease().await.expect("lease").expect("held");
    assert_eq!((lease.holder.as_str(), lease.epoch), ("b", 2));
    // SQLite has one server: no leases.
    let sqlite = SqlStore::open("sqlite::memory:").await.expect("open");
    assert!(sqlite.acquire_lease("a", short).await.is_err());
    store.close().await;
}

/// A path that would be read as url syntax (`?`, `#`, `%`, a space) is still a file name.
#[tokio::test]
async fn open_path_takes_any_file_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("odd ?name#1%.db");
    let store = SqlStore::open_path(&path).await.expect("open_path");
    store.create_cluster("c").await.expect("create");
    assert!(
        path.exists(),
        "the file is named exactly {}",
        path.display()
    );
}

#[tokio::test]
async fn open_path_creates_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested.db");
    let store = SqlStore::open_path(&path).await.expect("open_path");
    store.create_cluster("c").await.expect("create");
    assert!(path.exists(), "open_path creates the database file");
}

#[tokio::test]
async fn bad_url_is_a_store_error() {
    for url in ["mysql://nowhere/db", "nowhere.db"] {
        let err = SqlStore::open(url).await.unwrap_err();
        assert!(
            matches!(err, bigmgr_core::Error::Store(_)),
            "{url}: a url of no engine, or one that cannot be reached, is a Store error, got {err:?}"
        );
    }
    // Nothing listens on port 1: a Store error, which hides the password.
    let err = SqlStore::open("postgres://u:hunter2@127.0.0.1:1/db")
        .await
        .unwrap_err();
    assert!(matches!(err, bigmgr_core::Error::Store(_)), "{err:?}");
    assert!(
        !err.to_string().contains("hunter2"),
        "the password is hidden: {err}"
    );
}

/// Everything written before a store is dropped is there after reopening, more than once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bigmgr.db");

    let store = SqlStore::open_path(&path).await.expect("open");
    let cluster = store.create_cluster("prod").await.expect("cluster");
    let host = store
        .add_host(NewHost {
            cluster: cluster.id,
            name: "node1".into(),
            address: "10.0.0.1".into(),
        })
        .await
        .expect("host");
    let (service, units) = store
        .add_service(
            NewService {
                cluster: cluster.id,
                name: "zk".into(),
                stack: "bigtop".into(),
                stack_version: "1.0.0".into(),
                service: "zookeeper".into(),
                configs: Default::default(),
                host_overrides: Default::default(),
                author: "system".into(),
            },
            vec![NewUnit {
                component: "zookeeper_server".into(),
                host: host.id,
            }],
        )
        .await
        .expect("service");
    let stage = |command: &str, after| NewStage {
        name: command.to_uppercase(),
        service: service.id,
        component: "zookeeper_server".into(),
        command: command.into(),
        after,
        tasks: vec![NewTask {
            unit: units[0].id,
            host: host.id,
        }],
    };
    let job = store
        .create_job(&NewJob {
            cluster: cluster.id,
            command: "deploy".into(),
            target: Target::Service("zk".into()),
            options: JobOptions::default(),
            stages: vec![stage("install", vec![]), stage("start", vec![0])],
        })
        .await
        .expect("job");
    let t0 = job.tasks[0].id;
    let batch = Batch {
        tasks: vec![TaskChange {
            id: t0,
            from: TaskState::Pending,
            to: TaskState::Succeeded,
            exit_code: Some(0),
            ..TaskChange::default()
        }],
        units: vec![(units[0].id, UnitState::Installed)],
        logs: (0..3)
            .map(|seq| LogLine {
                task: t0,
                attempt: 1,
                seq,
                stream: LogStream::Stdout,
                at: 10,
                line: format!("line {seq}"),
            })
            .collect(),
        ..Batch::default()
    };
    assert_eq!(store.apply(&batch).await.expect("apply").tasks, vec![true]);
    let detail = store.job_detail(job.job.id).await.expect("detail");
    let log = store.task_log(t0, None).await.expect("log");
    let all_units = store.list_units(cluster.id).await.expect("units");
    store.close().await;
    drop(store);

    for round in 0..2 {
        let store = SqlStore::open(&format!("sqlite://{}", path.display()))
            .await
            .expect("reopen");
        assert_eq!(
            store.list_clusters().await.expect("clusters").first(),
            Some(&cluster),
            "round {round}: clusters survive"
        );
        assert_eq!(
            store.host_by_name("node1").await.expect("host"),
            Some(host.clone()),
            "round {round}: hosts survive"
        );
        assert_eq!(
            store.list_units(cluster.id).await.expect("units"),
            all_units,
            "round {round}: units and their states survive"
        );
        assert_eq!(
            store.job_detail(job.job.id).await.expect("detail"),
            detail,
            "round {round}: jobs, stages, deps and tasks survive"
        );
        assert_eq!(
            store.task_log(t0, None).await.expect("log"),
            log,
            "round {round}: logs survive"
        );
        // The reopened store is fully usable: names still unique, ids still fresh.
        assert!(store.create_cluster("prod").await.is_err());
        let next = store
            .create_cluster(&format!("more{round}"))
            .await
            .expect("create");
        assert!(next.id > cluster.id);
        store.close().await;
    }
}

/// Two stores on one file (as two processes would be) race the same task transitions: the
/// compare-and-set in the database, not the in-process lock, makes exactly one win each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_race() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("shared.db");
    let one = SqlStore::open_path(&path).await.expect("open one");
    let two = SqlStore::open_path(&path).await.expect("open two");
    let (cluster, service, units) = big_fixture(&one, 50).await;
    let job = one
        .create_job(&NewJob {
            cluster,
            command: "start".into(),
            target: Target::Cluster,
            options: JobOptions::default(),
            stages: vec![NewStage {
                name: "START hdfs/datanode".into(),
                service,
                component: "datanode".into(),
                command: "start".into(),
                after: vec![],
                tasks: new_tasks(&units),
            }],
        })
        .await
        .expect("job");
    for t in &job.tasks {
        let change = |to| Batch {
            tasks: vec![TaskChange {
                id: t.id,
                from: TaskState::Pending,
                to,
                ..TaskChange::default()
            }],
            ..Batch::default()
        };
        let (q, c) = (change(TaskState::Queued), change(TaskState::Canceled));
        let (a, b) = tokio::join!(
            tokio::spawn({
                let one = one.clone();
                async move { one.apply(&q).await }
            }),
            tokio::spawn({
                let two = two.clone();
                async move { two.apply(&c).await }
            })
        );
        let a = a.expect("join").expect("apply one").tasks[0];
        let b = b.expect("join").expect("apply two").tasks[0];
        assert!(
            a ^ b,
            "task {}: exactly one store wins, got {a} and {b}",
            t.id
        );
    }
}

/// A task for every unit of `units`, on its host.
fn new_tasks(units: &[Unit]) -> Vec<NewTask> {
    let task = |u: &Unit| NewTask {
        unit: u.id,
        host: u.host,
    };
    units.iter().map(task).collect()
}

/// Applies `batch`, every task change of which must apply, and answers how long it took.
async fn timed_apply(store: &SqlStore, batch: &Batch) -> std::time::Duration {
    let t = Instant::now();
    let applied = store.apply(batch).await.expect("apply");
    let took = t.elapsed();
    assert!(applied.tasks.iter().all(|&a| a));
    took
}

async fn big_fixture(store: &SqlStore, hosts: usize) -> (ClusterId, ServiceId, Vec<Unit>) {
    let cluster = store.create_cluster("big").await.expect("cluster");
    let mut new_units = Vec::with_capacity(hosts);
    for i in 0..hosts {
        let h = store
            .add_host(NewHost {
                cluster: cluster.id,
                name: format!("node{i:04}"),
                address: format!("10.0.{}.{}", i / 256, i % 256),
            })
            .await
            .expect("host");
        new_units.push(NewUnit {
            component: "datanode".into(),
            host: h.id,
        });
    }
    let (service, units) = store
        .add_service(
            NewService {
                cluster: cluster.id,
                name: "hdfs".into(),
                stack: "bigtop".into(),
                stack_version: "1.0.0".into(),
                service: "hdfs".into(),
                configs: Default::default(),
                host_overrides: Default::default(),
                author: "system".into(),
            },
            new_units,
        )
        .await
        .expect("service");
    (cluster.id, service.id, units)
}

async fn measure(store: &SqlStore, label: &str) {
    const HOSTS: usize = 1_000;
    const STAGES: usize = 10;
    let (cluster, service, units) = big_fixture(store, HOSTS).await;
    let job = NewJob {
        cluster,
        command: "restart".into(),
        target: Target::Service("hdfs".into()),
        options: JobOptions::default(),
        stages: (0..STAGES)
            .map(|i| NewStage {
                name: format!("STEP{i} hdfs/datanode"),
                service,
                component: "datanode".into(),
                command: "restart".into(),
                after: if i == 0 { vec![] } else { vec![i - 1] },
                tasks: new_tasks(&units),
            })
            .collect(),
    };

    let t = Instant::now();
    let detail = store.create_job(&job).await.expect("create_job");
    let create = t.elapsed();
    assert_eq!(detail.tasks.len(), HOSTS * STAGES);

    let change = |t: &Task, from, to| TaskChange {
        id: t.id,
        from,
        to,
        ..TaskChange::default()
    };
    let queue = Batch {
        tasks: detail
            .tasks
            .iter()
            .map(|t| change(t, TaskState::Pending, TaskState::Queued))
            .collect(),
        ..Batch::default()
    };
    let apply_plain = timed_apply(store, &queue).await;

    let finish = Batch {
        tasks: detail
            .tasks
            .iter()
            .map(|t| TaskChange {
                attempt_is: Some(1),
                exit_code: Some(0),
                pid: Some(4242),
                started_at: Some(1),
                finished_at: Some(2),
                message: Some("ok".into()),
                ..change(t, TaskState::Queued, TaskState::Succeeded)
            })
            .collect(),
        units: units.iter().map(|u| (u.id, UnitState::Started)).collect(),
        logs: detail
            .tasks
            .iter()
            .map(|t| LogLine {
                task: t.id,
                attempt: 1,
                seq: 0,
                stream: LogStream::Stdout,
                at: 2,
                line: "restarted".into(),
            })
            .collect(),
        ..Batch::default()
    };
    let apply_full = timed_apply(store, &finish).await;

    let t = Instant::now();
    let loaded = store.job_detail(detail.job.id).await.expect("detail");
    let load = t.elapsed();
    assert_eq!(loaded.map(|d| d.tasks.len()), Some(HOSTS * STAGES));

    println!(
        "store measurement ({label}, {} tasks): create_job {create:?}; apply {} task changes \
         {apply_plain:?}; apply {} task changes + {} units + {} log lines {apply_full:?}; \
         job_detail {load:?}",
        HOSTS * STAGES,
        queue.tasks.len(),
        finish.tasks.len(),
        finish.units.len(),
        finish.logs.len(),
    );
}

/// Prints how long create_job and apply take for 10 000 tasks (no assertion on time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measure_10k_tasks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqlStore::open_path(&dir.path().join("big.db"))
        .await
        .expect("open");
    measure(&store, "file").await;
    let store = SqlStore::open("sqlite::memory:").await.expect("open");
    measure(&store, "memory").await;
}

/// A database made by schema version 5 (before config versions) is migrated: its service
/// instances get their configs as version 1 and desired version 1, units of removed services
/// are removed with them.
#[tokio::test]
async fn migrating_from_version_5_makes_version_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = dir.path().join("migrations");
    std::fs::create_dir(&old).expect("mkdir");
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for n in 1..=5 {
        let name = std::fs::read_dir(&src)
            .expect("read migrations")
            .map(|e| e.expect("entry").file_name())
            .find(|f| f.to_string_lossy().starts_with(&format!("000{n}_")))
            .expect("migration");
        std::fs::copy(src.join(&name), old.join(&name)).expect("copy");
    }
    let path = dir.path().join("bigmgr.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.expect("pool");
    let migrator = sqlx::migrate::Migrator::new(old.as_path())
        .await
        .expect("migrator");
    migrator.run(&pool).await.expect("migrate to 5");
    for sql in [
        "INSERT INTO clusters (id, name, created_at) VALUES (1, 'prod', 10)",
        "INSERT INTO hosts (id, cluster, name, address, state) VALUES (1, 1, 'h1', 'a', 'ONLINE')",
        "INSERT INTO services (id, cluster, name, stack, stack_version, service, created_at, \
           configs) VALUES (1, 1, 'zk', 'bigtop', '1.0.0', 'zookeeper', 20, \
           '{\"zoo.cfg\":{\"tickTime\":1000}}')",
        "INSERT INTO services (id, cluster, name, stack, stack_version, service, created_at, \
           removed_at) VALUES (2, 1, 'old#2', 'bigtop', '1.0.0', 'zookeeper', 30, 40)",
        "INSERT INTO units (id, service, component, host, state) \
           VALUES (1, 1, 'zookeeper_server', 1, 'STARTED'), (2, 2, 'zookeeper_server', 1, 'NEW')",
    ] {
        sqlx::query(sql).execute(&pool).await.expect(sql);
    }
    pool.close().await;

    let store = SqlStore::open_path(&path)
        .await
        .expect("open migrates to the latest");
    let zk = store
        .service_by_name(ClusterId(1), "zk")
        .await
        .expect("service_by_name")
        .expect("zk");
    assert_eq!(zk.config_version, 1, "existing services are at version 1");
    assert_eq!(zk.configs["zoo.cfg"]["tickTime"], serde_json::json!(1000));
    let versions = store.list_config_versions(zk.id).await.expect("versions");
    assert_eq!(
        versions
            .iter()
            .map(|v| (
                v.version,
                v.author.as_str(),
                v.message.as_str(),
                v.created_at
            ))
            .collect::<Vec<_>>(),
        vec![(1, "system", "initial configs", 20)],
        "an existing service's configs become its version 1"
    );
    assert_eq!(versions[0].configs, zk.configs);
    assert_eq!(
        store
            .list_config_versions(ServiceId(2))
            .await
            .expect("versions")
            .len(),
        1,
        "removed services get their version 1 too"
    );
    let units = store.list_units(ClusterId(1)).await.expect("units");
    assert_eq!(
        units.iter().map(|u| u.id).collect::<Vec<_>>(),
        vec![UnitId(1)]
    );
    let pool =
        sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&path))
            .await
            .expect("pool");
    let removed: Vec<(i64, Option<i64>)> =
        sqlx::query_as("SELECT id, removed_at FROM units ORDER BY id")
            .fetch_all(&pool)
            .await
            .expect("units");
    assert_eq!(
        removed,
        vec![(1, None), (2, Some(40))],
        "a removed service's units are removed with it"
    );
    pool.close().await;
    assert_eq!(
        store
            .add_config_version(zk.id, 1, &Default::default())
            .await
            .expect("v2")
            .version,
        2
    );
}
