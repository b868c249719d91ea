"""bigmgr's Python module against the real engine: an Embedded on a SQLite file with two
in-process agents running the demo stack's real scripts."""

import asyncio
import time
import pydoc
import re

import pytest

import bigmgr
from conftest import (
    AGENTS,
    STACKS,
    PIPELINE_BATCHES,
    add_hosts,
    assert_common_errors,
    assert_pipeline_runs,
    assert_pipelines,
    assert_restore_round_trip,
    kill_pid_files,
    open_embedded,
    write_service,
)


def test_deploy_with_progress(deployed, capsys):
    emb, cluster, job = deployed
    assert job.wait(progress=True, timeout=180) is job
    assert job.state == "SUCCEEDED"
    err = capsys.readouterr().err
    assert f"[job {job.id}] START hello/hello_server: SUCCEEDED 2/2" in err
    assert f"[job {job.id}] START greeter/greeter_server: SUCCEEDED 2/2" in err
    assert f"[job {job.id}] deploy on demo: SUCCEEDED" in err
    names = [s.name for s in job.stages]
    assert "INSTALL hello/hello_server" in names
    assert names.index("START hello/hello_server") < names.index("START greeter/greeter_server")
    assert all(s.state == "SUCCEEDED" for s in job.stages)
    for stage in job.stages:
        for t in stage.tasks:
            assert t.host in ("h1", "h2")
            assert t.state == "SUCCEEDED" and t.exit_code == 0 and t.attempt == 1


def test_units_started(deployed):
    emb, cluster, job = deployed
    job.wait(timeout=180)
    hello = cluster.service("hello")
    assert hello.definition == "hello" and hello.stack == "demo" and hello.stack_version == "1.0.0"
    assert sorted((u.component, u.host, u.state) for u in hello.units) == [
        ("hello_server", "h1", "STARTED"),
        ("hello_server", "h2", "STARTED"),
    ]
    greeter = cluster.service("greeter")
    states = {(u.component, u.host): u.state for u in greeter.units}
    assert states[("greeter_server", "h1")] == "STARTED"
    assert states[("greeter_server", "h2")] == "STARTED"
    assert ("greeter_client", "h1") in states
    assert {s.name for s in cluster.services()} == {"hello", "greeter"}
    assert [h.name for h in cluster.hosts()] == ["h1", "h2"]
    assert all(h.state == "ONLINE" for h in cluster.hosts())


def test_logs_from_both_hosts(deployed):
    emb, cluster, job = deployed
    job.wait(timeout=180)
    lines = list(job.logs())
    assert lines, "the deploy wrote no log lines"
    assert {l.host for l in lines} == {"h1", "h2"}
    texts = [l.line for l in lines]
    assert any(re.match(r"hello started \(pid \d+\)", t) for t in texts), texts
    assert any(t.startswith("hello installed in") for t in texts)
    keys = [(l.task, l.attempt, l.at, l.line) for l in lines]
    assert len(keys) == len(set(keys)), "a line was yielded twice"
    assert all(l.stream in ("stdout", "stderr") and l.attempt == 1 for l in lines)
    # Without follow: the same lines, at once.
    assert [l.line for l in job.logs(follow=False)] == texts


def test_follow_logs_of_a_running_job(deployed):
    emb, cluster, job = deployed
    job.wait(timeout=180)
    status = cluster.run("restart", service="hello")
    seen = [l for l in status.logs(follow=True)]
    # follow ends once the job ends, with every line of it.
    assert status.refresh().state == "SUCCEEDED"
    assert {l.host for l in seen} == {"h1", "h2"}
    assert any("hello started" in l.line for l in seen)


def test_jobs_and_reprs(deployed):
    emb, cluster, job = deployed
    job.wait(timeout=180)
    assert repr(job) == f"<Job {job.id} deploy on demo: SUCCEEDED>"
    assert repr(cluster) == "<Cluster demo>"
    assert repr(cluster.hosts()[0]) == "<Host h1 127.0.0.2: ONLINE>"
    assert re.fullmatch(r"<Unit \d+ hello/hello_server on h[12]: STARTED>", repr(cluster.service("hello").units[0]))
    assert re.fullmatch(r"<Stage \d+ INSTALL \w+/\w+: SUCCEEDED \(\d task\(s\)\)>", repr(job.stages[0]))
    assert repr(job.stages[0].tasks[0]).startswith("<Task ")
    line = next(iter(job.logs(follow=False)))
    assert repr(line).startswith(f"<LogLine task {line.task} on ")
    assert repr(emb).startswith("<Embedded ") and "h1, h2" in repr(emb)
    jobs = cluster.jobs()
    assert jobs[-1].id == job.id, "jobs come newest first"
    assert emb.job(job.id).state == "SUCCEEDED"
    assert [c.name for c in emb.clusters()] == ["demo"]
    demo = [s for s in emb.stacks() if s.name == "demo"][0]
    assert demo.version == "1.0.0" and demo.services == ["greeter", "hello"]
    assert repr(demo) == "<Stack demo 1.0.0: greeter, hello>"


def test_update_configs_versions_and_restart_stale(deployed):
    emb, cluster, job = deployed
    job.wait(timeout=180)
    hello = cluster.service("hello")
    v = hello.update_configs({"hello.conf": {"greeting": "bonjour"}}, message="french")
    assert (v.service, v.version, v.author, v.message) == ("hello", 2, "pytest", "french")
    assert v.configs == {"hello.conf": {"greeting": "bonjour"}}
    assert hello.config_version == 2 and hello.configs == {"hello.conf": {"greeting": "bonjour"}}
    assert all(u.stale for u in hello.units)
    versions = hello.config_versions()
    assert [x.version for x in versions] == [1, 2]
    assert versions[0].author == "pytest"
    assert repr(versions[1]) == "<ConfigVersion hello v2 by pytest: \"french\">"
    jobs = cluster.restart_stale("hello")
    assert [j.command for j in jobs] == ["reconfigure"]
    for j in jobs:
        j.wait(timeout=180)
    hello.refresh()
    assert not any(u.stale for u in hello.units)
    assert all(u.applied_version == 2 and u.state == "STARTED" for u in hello.units)
    back = hello.rollback(1)
    assert back.version == 3 and back.configs == {} and back.message == "rollback to version 1"
    for j in cluster.restart_stale():
        j.wait(timeout=180)


def test_wait_async_does_not_block_the_loop(deployed):
    emb, cluster, job = deployed
    job.wait(timeout=180)

    async def main():
        ticks = 0
        stop = asyncio.Event()

        async def ticker():
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        t = asyncio.create_task(ticker())
        # The whole cluster, in order: long enough (several stages) that a blocked loop shows.
        check = cluster.run("restart")
        started = time.monotonic()
        done = await check.wait_async(timeout=120)
        waited = time.monotonic() - started
        stop.set()
        await t
        return done, ticks, waited

    done, ticks, waited = asyncio.run(main())
    assert done.state == "SUCCEEDED"
    assert ticks > 5, "the event loop was blocked while waiting"
    # The loop ticked all along: at least half the 10 ms ticks the wait lasted.
    assert ticks >= waited / 0.01 / 2, f"{ticks} ticks in {waited:.3f}s: the loop was held"


def test_errors(deployed):
    emb, cluster, job = deployed
    job.wait(timeout=180)
    with pytest.raises(bigmgr.NotFound, match="cluster 'nope' not found"):
        emb.cluster("nope")
    with pytest.raises(bigmgr.Conflict, match="already exists"):
        emb.create_cluster("demo")
    with pytest.raises(bigmgr.InvalidInput, match="interval"):
        cluster.service("hello").update_configs({"hello.conf": {"interval": "soon"}})
    with pytest.raises(bigmgr.InvalidInput):
        cluster.run("no-such-command", service="hello")
    with pytest.raises(bigmgr.InvalidInput, match="at most one target"):
        cluster.run("start", service="hello", hosts=["h1"])
    assert_common_errors(emb, cluster, "not a name")
    with pytest.raises(bigmgr.Conflict):
        emb.delete_cluster("demo")
    # Every one of them is a bigmgr.Error.
    with pytest.raises(bigmgr.Error):
        emb.cluster("nope")
    assert issubclass(bigmgr.JobFailed, bigmgr.Error)


def test_a_failing_job_raises_job_failed(tmp_path, tiny_stacks):
    emb = open_embedded(tmp_path, stacks=[str(tiny_stacks)])
    try:
        c = emb.create_cluster("t")
        add_hosts(c)
        c.add_service("bad", "tiny", "bad", {"bad_server": ["h1", "h2"]})
        job = c.run("deploy")
        with pytest.raises(bigmgr.JobFailed) as e:
            job.wait(timeout=120)
        msg = str(e.value)
        assert f"job {job.id} (deploy on t) ended FAILED" in msg
        assert "START bad/bad_server on h1) FAILED with exit code 1" in msg
        assert e.value.job is job and job.state == "FAILED"
        stderr = [l.line for l in job.logs(follow=False) if l.stream == "stderr"]
        assert "boom: tiny_bad refuses to start on h1" in stderr
        # check=False returns the failed job instead.
        assert job.wait(check=False).state == "FAILED"
        units = c.service("bad").units
        assert all(u.state == "FAILED" for u in units)
    finally:
        emb.close()


TINY_NEEDY = """\
#!/bin/sh
# Calls, on start, a command that is not installed.
case "$1" in
  start) echo starting; no-such-tool-for-bigmgr --serve ;;
  *) echo "$1 ok"; exit 0 ;;
esac
"""


def test_advice_explains_a_failed_job(tmp_path):
    """The advisor, from Python: a start that calls a missing command is diagnosed from its
    log, with the line as evidence and the job's retry as the suggested request."""
    root = tmp_path / "needy-stacks"
    write_service(root / "tiny" / "1.0.0", "needy", TINY_NEEDY)
    emb = open_embedded(tmp_path, stacks=[str(root)])
    try:
        c = emb.create_cluster("t")
        add_hosts(c)
        c.add_service("needy", "tiny", "needy", {"needy_server": ["h1"]})
        job = c.run("deploy")
        assert job.wait(timeout=120, check=False).state == "FAILED"
        findings = c.advice(job=job.id)
        assert [f.rule for f in findings] == ["task.missing_command"], findings
        f = findings[0]
        assert isinstance(f, bigmgr.Finding)
        assert (f.severity, f.host, f.service, f.job) == ("CRITICAL", "h1", "needy", job.id)
        assert any("no-such-tool-for-bigmgr" in e for e in f.evidence), f.evidence
        assert "a command or package it needs is missing" in f.title
        assert f.hint.startswith("Install what the log line names")
        assert f.actions == [
            {
                "title": f"retry job {job.id} once it is fixed",
                "method": "POST",
                "path": f"/jobs/{job.id}/retry",
                "body": None,
            }
        ]
        assert "task.missing_command" in repr(f)
        # Scoped: the whole cluster has it, so does its host and service; h2 has nothing.
        assert [x.rule for x in c.advice()] == ["task.missing_command"]
        assert [x.rule for x in c.advice(host="h1", service="needy")] == ["task.missing_command"]
        assert c.advice(host="h2") == []
        with pytest.raises(bigmgr.NotFound):
            c.advice(job=987654)
    finally:
        emb.close()


class DirProvider:
    """A StackProvider serving one stack root laid out as <stack>/<version>/<service>/."""

    def __init__(self, root):
        self.root = root
        self.calls = []

    def list(self):
        return [(s.name, v.name) for s in sorted(self.root.iterdir()) for v in sorted(s.iterdir())]

    def stack(self, name, version):
        self.calls.append((name, version))
        if not (self.root / name).is_dir():
            raise KeyError(f"no stack {name}")
        return str(self.root / name / version)


def test_python_stack_provider(tmp_path, tiny_stacks):
    provider = DirProvider(tiny_stacks)
    emb = open_embedded(tmp_path, stacks=provider)
    try:
        assert [(s.name, s.version, s.services) for s in emb.stacks()] == [
            ("tiny", "1.0.0", ["bad", "ok"])
        ]
        c = emb.create_cluster("p")
        add_hosts(c)
        svc = c.add_service("ok", "tiny", "ok", {"ok_server": ["h1", "h2"]})
        assert svc.stack_version == "1.0.0"
        job = c.run("deploy").wait(timeout=120)
        assert job.state == "SUCCEEDED"
        assert {u.state for u in c.service("ok").units} == {"STARTED"}
        assert any(l.line == "start ok on h2" for l in job.logs(follow=False))
        assert ("tiny", "1.0.0") in provider.calls
        with pytest.raises(bigmgr.Error, match="DirProvider.*no stack nope|no stack nope"):
            c.add_service("x", "nope", "ok", {"ok_server": ["h1"]}, version="1.0.0")
    finally:
        emb.close()


def test_help_and_docstrings():
    doc = pydoc.render_doc(bigmgr.Cluster, renderer=pydoc.plaintext)
    assert "add_service" in doc and "Submits a job running" in doc
    assert "restart_stale" in doc
    for method in ("snapshot", "restore", "units", "remove_unit", "remove_host", "relation_events"):
        assert method in doc, method
    assert "Waits until the job ends" in pydoc.render_doc(bigmgr.Job, renderer=pydoc.plaintext)
    for cls in (
        bigmgr.Client, bigmgr.Embedded, bigmgr.Cluster, bigmgr.Host, bigmgr.Service,
        bigmgr.Unit, bigmgr.Job, bigmgr.Stage, bigmgr.Task, bigmgr.LogLine,
        bigmgr.ConfigVersion, bigmgr.Relation, bigmgr.Stack, bigmgr.ConfigDiff,
        bigmgr.Snapshot, bigmgr.RelationEvent, bigmgr.Answer, bigmgr.AnswerStream,
        bigmgr.Proposal,
    ):
        assert cls.__doc__, cls
        for name, member in vars(cls).items():
            if not name.startswith("_") and callable(member):
                assert member.__doc__, f"{cls.__name__}.{name} has no docstring"


def test_closed_embedded_refuses(tmp_path):
    with open_embedded(tmp_path) as emb:
        assert emb.agents == ["h1", "h2"]
        c = emb.create_cluster("x")
        assert c.join_token().startswith("bmj_")
    assert emb.closed
    with pytest.raises(bigmgr.Error, match="closed"):
        emb.clusters()


def test_connect_builds_a_client():
    client = bigmgr.connect("http://127.0.0.1:1", token="bmt_x", timeout=2.0)
    assert repr(client) == "<Client http://127.0.0.1:1>"
    with pytest.raises(bigmgr.InvalidInput):
        bigmgr.connect("http://127.0.0.1:1", timeout=-1)


def test_diff_config_version_at_and_reconfigure(deployed):
    emb, cluster, job = deployed
    job.wait(timeout=180)
    hello = cluster.service("hello")
    v = hello.update_configs({"hello.conf": {"greeting": "hola"}}, message="spanish")
    before = hello.config_version_at(v.version - 1)
    assert before.version == v.version - 1 and before.service == "hello"
    assert hello.config_version_at(v.version).message == "spanish"
    diff = hello.diff(v.version - 1, v.version)
    assert len(diff) == 1, diff
    d = diff[0]
    assert (d.config_type, d.host, d.property) == ("hello.conf", None, "greeting")
    assert d.from_value == before.configs.get("hello.conf", {}).get("greeting")
    assert d.to_value == "hola"
    assert repr(d).startswith("<ConfigDiff hello.conf/greeting: ") and repr(d).endswith('-> "hola">')
    back = hello.diff(v.version, v.version - 1)[0]
    assert (back.from_value, back.to_value) == ("hola", d.from_value)
    assert hello.diff(v.version, v.version) == []
    with pytest.raises(bigmgr.NotFound):
        hello.diff(1, 999)
    with pytest.raises(bigmgr.NotFound):
        hello.config_version_at(999)
    # `reconfigure` (a plan command) applies it.
    assert all(u.stale for u in hello.refresh().units)
    done = cluster.run("reconfigure", service="hello").wait(timeout=180)
    assert done.command == "reconfigure" and done.state == "SUCCEEDED"
    assert all(not u.stale and u.applied_version == v.version for u in hello.refresh().units)


def test_snapshot_restore_round_trip(deployed):
    emb, cluster, job = deployed
    job.wait(timeout=180)
    hello = cluster.service("hello")
    at = hello.config_version
    snap = cluster.snapshot("before", message="known good")
    assert (snap.name, snap.author, snap.message) == ("before", "pytest", "known good")
    assert snap.versions == {"hello": at, "greeter": cluster.service("greeter").config_version}
    assert snap.created_at > 0
    assert repr(snap).startswith("<Snapshot before by pytest: ")
    assert [s.name for s in cluster.snapshots()] == ["before"]
    with pytest.raises(bigmgr.InvalidInput):
        cluster.snapshot("not a name")
    restored = assert_restore_round_trip(cluster, hello, "before", at)
    assert "restore snapshot before" in restored[0].message
    assert hello.refresh().configs == hello.config_version_at(at).configs
    for j in cluster.restart_stale():
        j.wait(timeout=180)


def test_units_add_units_and_remove_unit(deployed):
    emb, cluster, job = deployed
    job.wait(timeout=180)
    units = cluster.units()
    assert {(u.service, u.component, u.host) for u in units} == {
        ("hello", "hello_server", "h1"),
        ("hello", "hello_server", "h2"),
        ("greeter", "greeter_server", "h1"),
        ("greeter", "greeter_server", "h2"),
        ("greeter", "greeter_client", "h1"),
    }
    greeter = cluster.service("greeter")
    new = greeter.add_units("greeter_client", ["h2"])
    assert [(u.service, u.component, u.host, u.state) for u in new] == [
        ("greeter", "greeter_client", "h2", "NEW")
    ]
    assert new[0].id in [u.id for u in greeter.units], "the service is refreshed"
    assert new[0].id in [u.id for u in cluster.units()]
    with pytest.raises(bigmgr.Conflict):
        greeter.add_units("greeter_client", ["h2"])
    with pytest.raises(bigmgr.NotFound):
        greeter.add_units("nope", ["h2"])
    started = next(u for u in units if u.service == "hello")
    with pytest.raises(bigmgr.Conflict):
        cluster.remove_unit(started.id)
    cluster.remove_unit(new[0].id)
    assert new[0].id not in [u.id for u in cluster.units()]
    with pytest.raises(bigmgr.NotFound):
        cluster.remove_unit(new[0].id)


def test_relation_events(deployed):
    emb, cluster, job = deployed
    job.wait(timeout=180)
    rel = cluster.relate("greeter", "hello", auto_reconfigure=False)
    events = cluster.relation_events(rel.id)
    assert events and all(e.kind == "joined" for e in events), events
    assert "greeter" in {e.service for e in events}
    assert all(e.job is None and e.at > 0 for e in events)
    assert repr(events[0]).startswith("<RelationEvent joined to ")
    cluster.unrelate(rel.id)
    after = cluster.relation_events(rel.id)
    assert len(after) > len(events) and "broken" in {e.kind for e in after}, after
    with pytest.raises(bigmgr.NotFound):
        cluster.relation_events(999999)
    for j in cluster.restart_stale():
        j.wait(timeout=180)


def test_remove_host(embedded):
    c = embedded.create_cluster("r")
    add_hosts(c)
    spare = c.add_host("spare", "127.0.0.9")
    # No in-process agent serves "spare": it waits for one, and says so.
    assert (spare.state, spare.reported_address) == ("WAITING", None)
    assert {h.name: h.state for h in c.hosts()}["h1"] == "ONLINE"
    for hostile in ["$(touch /tmp/bigmgr-pwned)", "x';id;'", "../../etc/passwd", "a b"]:
        with pytest.raises(bigmgr.InvalidInput, match="address"):
            c.add_host("evil", hostile)
    assert "evil" not in [h.name for h in c.hosts()]
    c.remove_host("spare")
    assert [h.name for h in c.hosts()] == ["h1", "h2"]
    with pytest.raises(bigmgr.NotFound):
        c.remove_host("spare")
    c.add_service("hello", "demo", "hello", {"hello_server": ["h1"]})
    with pytest.raises(bigmgr.Conflict):
        c.remove_host("h1")
    c.remove_host("h2")
    assert [h.name for h in c.hosts()] == ["h1"]


def test_embedded_changes_are_authorised_and_audited_as_its_user(tmp_path):
    """The embedded engine acts as a named user: its changes are in the audit log under that
    name, and a viewer's session is refused a deploy as a viewer's REST call would be."""
    db = str(tmp_path / "bigmgr.db")
    root = str(tmp_path / "agents")
    with bigmgr.Embedded(db, stacks=[str(STACKS)], agents=AGENTS, root=root, user="alice") as e:
        c = e.create_cluster("c")
        add_hosts(c)
        c.add_service("hello", "demo", "hello", {"hello_server": ["h1"]})
        events = e.audit(actor="alice")
        done = {(ev["action"], ev["outcome"], ev["target"]) for ev in events}
        assert ("create-cluster", "ok", "cluster c") in done, events
        assert ("add-host", "ok", "host h1 of cluster c") in done, events
        assert ("add-service", "ok", "service hello of cluster c") in done, events
        assert all(ev["actor"] == "alice" for ev in events)
    with bigmgr.Embedded(
        db, stacks=[str(STACKS)], agents=AGENTS, root=root, user="vic", role="viewer"
    ) as e:
        c = e.cluster("c")
        assert [s.name for s in c.services()] == ["hello"], "a viewer reads"
        with pytest.raises(bigmgr.PermissionDenied, match="'vic' .*viewer.*submit-job"):
            c.run("deploy", service="hello")
        with pytest.raises(bigmgr.PermissionDenied):
            c.add_host("h9", "127.0.0.9")
        with pytest.raises(bigmgr.PermissionDenied):
            e.audit()
        assert c.jobs() == [], "nothing was submitted"
    with bigmgr.Embedded(db, stacks=[str(STACKS)], agents=AGENTS, root=root, user="alice") as e:
        refused = [ev for ev in e.audit(actor="vic") if ev["outcome"] == "refused"]
        assert {ev["action"] for ev in refused} >= {"submit-job", "add-host"}, refused
    with pytest.raises(bigmgr.InvalidInput, match="role"):
        bigmgr.Embedded(db, stacks=[str(STACKS)], root=root, role="root")
    kill_pid_files(tmp_path / "agents")


def test_cluster_spec_plan_apply_export_and_secrets(embedded, tmp_path, monkeypatch):
    c = embedded.create_cluster("s")
    add_hosts(c)
    spec = (
        'cluster = "s"\n\n[services.hello]\nstack = "demo"\nservice = "hello"\n'
        'placement = { hello_server = ["h1", "h2"] }\n'
        'configs = { "hello.conf" = { greeting = "from python" } }\n\n'
        '[services.cache]\nstack = "extra"\nservice = "redis"\n'
        'placement = { redis_primary = ["h1"] }\n'
        'configs = { "redis.conf" = { requirepass = { env = "PY_CACHE_PASS" } } }\n'
    )
    # A secret reference without a value: read here, so the error names the variable.
    monkeypatch.delenv("PY_CACHE_PASS", raising=False)
    with pytest.raises(bigmgr.InvalidInput, match="PY_CACHE_PASS is not set"):
        c.plan(spec)
    monkeypatch.setenv("PY_CACHE_PASS", "pw from env")
    plan = c.plan(spec)
    assert plan and plan.services_to_add == ["cache", "hello"]
    assert len(plan.units_to_add) == 3
    assert {"command": "deploy", "service": "hello", "hosts": [], "why": "service hello is new"} in plan.jobs
    # A spec with problems: every one with its line, nothing changed.
    with pytest.raises(bigmgr.InvalidInput, match="line 6"):
        c.plan(spec.replace("hello_server", "hello_sever"))

    # Only hello is applied (the redis daemon is not wanted here): its deploy succeeds.
    hello_only = spec[: spec.index("[services.cache]")]
    applied, jobs = c.apply(hello_only)
    assert applied.services_to_add == ["hello"]
    assert [j.command for j in jobs] == ["deploy"]
    jobs[0].wait(progress=False)
    assert not c.plan(hello_only)

    exported = c.export()
    assert exported.references == []
    assert 'greeting = "from python"' in exported.spec
    assert not c.plan(exported.spec, prune=True), "an export plans nothing on its own cluster"
    # Secrets given explicitly win over the environment.
    plan = c.plan(spec, secrets={"env:PY_CACHE_PASS": "given"})
    assert plan.services_to_add == ["cache"]
    # Counts are placed by the server too (here both hosts are equally loaded: spread).
    counted = c.add_service("counted", "demo", "greeter", {"greeter_server": 1})
    assert len([u for u in c.units() if u.service == "counted"]) == 1
    c.remove_service(counted.name)
    with pytest.raises(bigmgr.InvalidInput, match="only 2 may take one"):
        c.add_service("many", "demo", "greeter", {"greeter_server": {"count": 3, "match": "h*"}})
    with pytest.raises(bigmgr.InvalidInput, match="placement"):
        c.add_service("bad", "demo", "greeter", {"greeter_server": "h1"})
    stop = c.run("stop", service="hello")
    stop.wait(progress=False)


def test_pipelines_are_checked_created_and_removed(embedded):
    cluster = embedded.create_cluster("pipes")
    add_hosts(cluster)
    assert_pipelines(cluster, "h1", "h2")


def test_a_pipeline_runs_on_the_agents_and_is_controlled(embedded, tmp_path):
    """files (h1) → filter (2 replicas on h1 and h2) → sink (h2), run by the in-process
    agents on their roots: every kept line reaches the sink exactly once, the status shows
    every batch processed, scaling shows in the replicas, and a bad scale or a pause of a
    FINISHED pipeline raises what to fix."""
    cluster = embedded.create_cluster("runs")
    add_hosts(cluster)
    p = assert_pipeline_runs(cluster, tmp_path, "kept", "h1", ["h1", "h2"], "h2")

    status = p.status()
    assert isinstance(status, bigmgr.PipelineStatus)
    assert status.pipeline is p and p.state == "FINISHED"
    assert not status.running_here, "a FINISHED run is over"
    nodes = {n.name: n for n in status.nodes}
    assert {n: (x.kind, x.replicas) for n, x in nodes.items()} == {
        "files": ("source", None),
        "files->filter": ("channel", None),
        "filter": ("unit", 2),
        "filter->out": ("channel", None),
        "out": ("sink", None),
    }
    assert nodes["files"].recorded == PIPELINE_BATCHES
    f = nodes["filter"]
    assert (f.processed, f.waiting, f.leased) == (PIPELINE_BATCHES, 0, 0), f
    assert nodes["out"].processed == PIPELINE_BATCHES
    assert ("files", "files->filter") in status.edges and ("filter->out", "out") in status.edges
    assert "kept" in repr(status) and "filter" in repr(f)

    assert p.scale("filter", 3) is p
    assert p.replicas == {"filter": 3}
    assert cluster.pipeline("kept").replicas == {"filter": 3}
    assert {n.name: n.replicas for n in p.status().nodes}["filter"] == 3
    with pytest.raises(bigmgr.InvalidInput, match="no unit 'nope'") as e:
        p.scale("nope", 2)
    assert "filter" in str(e.value), "the message lists the units there are"
    with pytest.raises(bigmgr.InvalidInput, match="1 to 64"):
        p.scale("filter", 65)
    assert p.refresh().replicas == {"filter": 3}
    for action in (p.resume, p.stop):
        with pytest.raises(bigmgr.Conflict, match="FINISHED"):
            action()

    logs = p.logs()
    assert logs and all(isinstance(at, int) and isinstance(line, str) for at, line in logs)
    assert [at for at, _ in logs] == sorted(at for at, _ in logs)
    lines = [line for _, line in logs]
    assert lines[0].startswith("run started"), lines
    assert lines[-1] == "run ended: every batch was processed", lines
