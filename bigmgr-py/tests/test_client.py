"""The Python client (``bigmgr.connect``) against a real ``bigmgr serve`` and one real
``bigmgr-agent``, both started by the fixtures below.

The binaries come from the target directory: ``BIGMGR_TARGET_DIR``, default the repository's
``target/debug``. Build them first::

    cargo build -p bigmgr-server --bin bigmgr -p bigmgr-agent --bin bigmgr-agent
    (cd bigmgr-py && maturin develop)   # or pip install the wheel
    pytest bigmgr-py/tests/test_client.py

Every process (the server, the agent, and the demo daemons the agent's scripts start, found by
the pid files under the agent root's ``units/``) is killed by pid at teardown. Only loopback
addresses are used.
"""

import asyncio
import os
import sys
import queue
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

import bigmgr
from conftest import (
    REPO,
    STACKS,
    assert_common_errors,
    assert_pipeline_runs,
    assert_pipelines,
    assert_restore_round_trip,
    cleaned_up,
    write_service,
)

TARGET_DIR = Path(os.environ.get("BIGMGR_TARGET_DIR") or REPO / "target" / "debug")
READY_TIMEOUT = 30.0
JOB_TIMEOUT = 120.0


def _binary(name):
    path = TARGET_DIR / name
    if not path.exists():
        pytest.fail(
            f"{path} is not built: run `cargo build -p bigmgr-server --bin bigmgr -p bigmgr-agent --bin bigmgr-agent` "
            "first (or set BIGMGR_TARGET_DIR)"
        )
    return path


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env():
    """The test's environment without BIGMGR_* settings, so a developer's can't leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIGMGR_")}
    env["BIGMGR_LOG"] = "info"
    return env


class _Proc:
    """A child process whose output is read on threads, killed by pid at the end."""

    def __init__(self, what, args, log_dir):
        self.what = what
        self.stderr_path = log_dir / f"{what}.stderr"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [str(a) for a in args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=_clean_env(),
        )
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))

    def expect_stdout(self, pred, timeout):
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            seen.append(line)
            if pred(line):
                return line
        pytest.fail(
            f"{self.what} printed no expected line within {timeout}s; stdout:\n"
            + "\n".join(seen)
            + "\nstderr:\n"
            + self.stderr_path.read_text(errors="replace")
        )

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=30)
        self._stderr.close()


def _wait_for(what, fn, timeout=30.0, every=0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


CHATTY_LINES = 150
CHATTY = f"""\
#!/bin/sh
# Prints {CHATTY_LINES} numbered lines on start, slowly enough to be followed while it runs;
# every 10th goes to stderr.
case "$1" in
  start)
    i=1
    while [ "$i" -le {CHATTY_LINES} ]; do
      if [ $((i % 10)) -eq 0 ]; then echo "chatty line $i" >&2; else echo "chatty line $i"; fi
      [ $((i % 10)) -eq 0 ] && sleep 0.1
      i=$((i + 1))
    done ;;
  *) echo "$1 ok" ;;
esac
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A `bigmgr serve` on a free loopback port with a temporary data directory: (url, admin token)."""
    tmp = tmp_path_factory.mktemp("server")
    data = tmp / "data"
    chat = tmp / "chat-stacks"
    write_service(chat / "chat" / "1.0.0", "chatty", CHATTY)
    proc = _Proc(
        "bigmgr-serve",
        [
            _binary("bigmgr"),
            "serve",
            "--insecure-http",
            "--data",
            data,
            "--listen",
            f"127.0.0.1:{_free_port()}",
            "--stacks",
            STACKS,
            "--stacks",
            chat,
            "--heartbeat-interval",
            "1s",
        ],
        tmp,
    )
    try:
        line = proc.expect_stdout(
            lambda l: l.startswith("bigmgr listening on http://"), READY_TIMEOUT
        )
        url = "http://" + line[len("bigmgr listening on http://"):].strip()
        token = (data / "admin-token").read_text().strip()
        yield url, token
    finally:
        proc.kill()


@pytest.fixture(scope="module")
def client(server):
    url, token = server
    return bigmgr.connect(url, token)


@pytest.fixture(scope="module")
def cluster(client):
    return client.create_cluster("py")


@pytest.fixture(scope="module")
def agent(server, cluster, tmp_path_factory):
    """A real `bigmgr-agent` h1 (127.0.0.2) joined to cluster `py`; its root directory."""
    url, _ = server
    tmp = tmp_path_factory.mktemp("agent")
    root = tmp / "root"
    token = cluster.join_token()
    proc = _Proc(
        "bigmgr-agent-h1",
        [
            _binary("bigmgr-agent"),
            "--server",
            url,
            "--join-token",
            token,
            "--name",
            "h1",
            "--address",
            "127.0.0.2",
            "--root",
            root,
        ],
        tmp,
    )
    with cleaned_up(proc.kill, root / "units"):
        yield root


@pytest.fixture(scope="module")
def h1(cluster, agent):
    """Host h1 once its agent is ONLINE."""

    def online():
        return next((h for h in cluster.hosts() if h.name == "h1" and h.state == "ONLINE"), None)

    return _wait_for("h1 to come online", online, timeout=30)


@pytest.fixture(scope="module")
def hello(cluster, h1):
    """The demo `hello` service on h1; stopped (best effort) at the end."""
    svc = cluster.add_service("hello", "demo", "hello", {"hello_server": ["h1"]})
    yield svc
    try:
        cluster.run("stop", service="hello").wait(timeout=60, check=False)
    except Exception:  # the agent fixture kills what is left anyway
        pass


def test_connect_and_clusters(client, cluster, server):
    assert cluster.name == "py"
    assert isinstance(cluster.id, int)
    assert cluster.created_at > 0
    assert "py" in [c.name for c in client.clusters()]
    got = client.cluster("py")
    assert (got.id, got.name) == (cluster.id, "py")
    assert "py" in repr(got)
    stacks = client.stacks()
    demo = [s for s in stacks if s.name == "demo"]
    assert demo, stacks
    assert "hello" in demo[0].services
    assert "greeter" in demo[0].services


def test_a_tls_server_needs_its_ca(tmp_path):
    """A `bigmgr serve` with TLS (its default): `connect` trusts it with `ca=`, and without
    the CA (or with another server's) the call fails with what to give."""
    data = tmp_path / "data"
    proc = _Proc(
        "bigmgr-serve-tls",
        [_binary("bigmgr"), "serve", "--data", data, "--listen", f"127.0.0.1:{_free_port()}"],
        tmp_path,
    )
    try:
        line = proc.expect_stdout(
            lambda l: l.startswith("bigmgr listening on https://"), READY_TIMEOUT
        )
        url = line[len("bigmgr listening on "):].strip()
        token = (data / "admin-token").read_text().strip()
        ca = data / "tls" / "ca.pem"
        client = bigmgr.connect(url, token, ca=ca)
        client.create_cluster("tls")
        assert "tls" in [c.name for c in client.clusters()]
        with pytest.raises(bigmgr.Error, match="--ca"):
            bigmgr.connect(url, token)
        other = tmp_path / "other.pem"
        other.write_text(
            ca.read_text().replace("MII", "MIJ", 1)  # not the server's CA any more
        )
        with pytest.raises(bigmgr.Error):
            bigmgr.connect(url, token, ca=other).clusters()
    finally:
        proc.kill()


def test_join_token(cluster):
    token = cluster.join_token()
    assert isinstance(token, str)
    assert token.startswith("bmj_")
    assert token != cluster.join_token()


def test_the_agent_joins_as_a_host(cluster, h1):
    assert h1.address == "127.0.0.2"
    assert h1.last_heartbeat is not None
    assert [h.name for h in cluster.hosts()] == ["h1"]


def test_alerts_of_the_cluster(cluster, h1):
    """The server's built-in checks find h1 online: its host_lost alert is OK, so not firing."""

    def checked():
        return next(
            (a for a in cluster.alerts() if a.definition == "host_lost" and a.host == "h1"), None
        )

    alert = _wait_for("h1's host_lost alert", checked, timeout=30)
    assert isinstance(alert, bigmgr.Alert)
    assert (alert.state, alert.text) == ("OK", "host h1 is online")
    assert alert.service is None and alert.unit is None
    assert all(a.definition != "host_lost" for a in cluster.alerts(firing=True))
    assert "host_lost" in repr(alert)


def test_maintenance_silences_a_host_and_healing_is_a_policy(cluster, hello):
    """A window on h1 marks its alerts silenced and ends on request; a service's self-healing
    policy is read, set, and refused when out of range."""
    window = cluster.silence(host="h1", for_="1h", reason="disk swap")
    assert isinstance(window, bigmgr.Maintenance)
    assert (window.host, window.service, window.reason, window.by) == ("h1", None, "disk swap", "admin")
    assert [w.id for w in cluster.maintenance()] == [window.id]

    def silenced():
        return next(
            (a for a in cluster.alerts() if a.host == "h1" and a.silenced is not None), None
        )

    alert = _wait_for("an alert of h1 marked silenced", silenced, timeout=30)
    assert "host h1 is in maintenance until" in alert.silenced and "disk swap" in alert.silenced
    with pytest.raises(bigmgr.InvalidInput, match="one of them"):
        cluster.silence(host="h1")
    with pytest.raises(bigmgr.NotFound):
        cluster.silence(host="nope", for_="1h")
    cluster.unsilence(window.id)
    assert cluster.maintenance() == []
    with pytest.raises(bigmgr.NotFound):
        cluster.unsilence(window.id)

    off = cluster.healing("hello")
    assert isinstance(off, bigmgr.Healing)
    assert (off.restart, off.grace, off.max_per_hour) == (False, "30s", 3)
    on = cluster.healing("hello", restart=True, grace="10s", max_per_hour=2)
    assert (on.restart, on.grace, on.max_per_hour, on.gave_up) == (True, "10s", 2, False)
    with pytest.raises(bigmgr.InvalidInput, match="max_per_hour"):
        cluster.healing("hello", restart=True, max_per_hour=0)
    assert cluster.healing("hello", restart=False).restart is False


def test_add_service(cluster, hello):
    assert (hello.name, hello.stack, hello.definition) == ("hello", "demo", "hello")
    assert hello.stack_version == "1.0.0"
    assert hello.config_version == 1
    assert [(u.component, u.host) for u in hello.units] == [("hello_server", "h1")]
    assert [s.name for s in cluster.services()] == ["hello"]
    assert cluster.service("hello").id == hello.id


def test_deploy_with_progress_and_logs(cluster, hello, capfd):
    job = cluster.run("deploy", service="hello")
    assert job.command == "deploy"
    assert job.cluster == "py"
    done = job.wait(progress=True, timeout=JOB_TIMEOUT)
    assert done.state == "SUCCEEDED", done
    err = capfd.readouterr().err
    assert f"[job {job.id}]" in err, err
    assert "hello/hello_server" in err, err
    assert "SUCCEEDED" in err, err
    assert done.stages and all(s.state == "SUCCEEDED" for s in done.stages)
    assert done.finished_at is not None

    logs = list(done.logs(follow=False))
    text = "\n".join(l.line for l in logs)
    for want in ("hello installed in", "hello configured:", "hello started (pid"):
        assert want in text, text
    assert all(l.host == "h1" for l in logs)
    assert all(l.stream in ("stdout", "stderr") for l in logs)
    task_ids = {t.id for s in done.stages for t in s.tasks}
    assert {l.task for l in logs} <= task_ids

    unit = cluster.service("hello").units[0]
    assert unit.state == "STARTED"
    assert unit.applied_version == 1
    assert job.id in [j.id for j in cluster.jobs()]


def test_wait_async(cluster, hello):
    job = cluster.run("status", component="hello/hello_server")
    done = asyncio.run(job.wait_async(timeout=JOB_TIMEOUT))
    assert done.state in ("SUCCEEDED", "FAILED")
    assert done.id == job.id


def test_update_configs_and_versions(cluster, hello):
    v = hello.update_configs({"hello.conf": {"greeting": "hi"}}, message="friendlier")
    assert v.version == hello.refresh().config_version
    assert v.message == "friendlier"
    assert v.configs["hello.conf"]["greeting"] == "hi"
    versions = hello.config_versions()
    assert [x.version for x in versions][-1] == v.version
    assert versions[0].version == 1
    back = hello.rollback(1, message="back")
    assert back.version == v.version + 1
    assert back.configs == versions[0].configs
    svc = cluster.service("hello")
    assert svc.config_version == back.version
    with pytest.raises(bigmgr.InvalidInput):
        hello.update_configs({"hello.conf": {"interval": "often"}})


def test_diff_and_config_version_at(cluster, hello):
    v = hello.update_configs({"hello.conf": {"greeting": "salut"}}, message="diffed")
    before = hello.config_version_at(v.version - 1)
    assert hello.config_version_at(v.version).message == "diffed"
    diff = hello.diff(v.version - 1, v.version)
    assert [(d.config_type, d.host, d.property, d.to_value) for d in diff] == [
        ("hello.conf", None, "greeting", "salut")
    ]
    assert diff[0].from_value == before.configs.get("hello.conf", {}).get("greeting")
    assert hello.diff(v.version, v.version) == []
    with pytest.raises(bigmgr.NotFound):
        hello.config_version_at(999)


def test_snapshot_and_restore(cluster, hello):
    at = hello.refresh().config_version
    snap = cluster.snapshot("py-snap", message="before a change")
    assert snap.versions["hello"] == at and snap.message == "before a change"
    assert snap.author, snap
    assert "py-snap" in [s.name for s in cluster.snapshots()]
    assert_restore_round_trip(cluster, hello, "py-snap", at)


def test_units_hosts_and_relation_events(client):
    # Its own cluster, on hosts no agent serves: placing and removing need no agent.
    c = client.create_cluster("py-units")
    c.add_host("n1", "127.0.0.11")
    c.add_host("n2", "127.0.0.12")
    c.add_host("spare", "127.0.0.13")
    hello = c.add_service("hello", "demo", "hello", {"hello_server": ["n1"]})
    assert [u.service for u in hello.units] == ["hello"]
    new = hello.add_units("hello_server", ["n2"])
    assert [(u.service, u.component, u.host, u.state) for u in new] == [
        ("hello", "hello_server", "n2", "NEW")
    ]
    assert sorted(u.host for u in hello.units) == ["n1", "n2"]
    assert sorted((u.service, u.host) for u in c.units()) == [("hello", "n1"), ("hello", "n2")]
    with pytest.raises(bigmgr.Conflict):
        hello.add_units("hello_server", ["n2"])
    c.remove_unit(new[0].id)
    assert [u.host for u in c.units()] == ["n1"]
    with pytest.raises(bigmgr.NotFound):
        c.remove_unit(new[0].id)
    c.remove_host("spare")
    assert [h.name for h in c.hosts()] == ["n1", "n2"]
    with pytest.raises(bigmgr.Conflict):
        c.remove_host("n1")

    c.add_service("greeter", "demo", "greeter", {"greeter_server": ["n2"]})
    rel = c.relate("greeter", "hello", auto_reconfigure=False)
    events = c.relation_events(rel.id)
    assert events and all(e.kind == "joined" and e.job is None for e in events), events
    assert "greeter" in {e.service for e in events}
    c.unrelate(rel.id)
    assert "broken" in {e.kind for e in c.relation_events(rel.id)}
    with pytest.raises(bigmgr.NotFound):
        c.relation_events(999999)


def test_error_classes(client, cluster, server):
    url, _ = server
    for cls in (
        bigmgr.NotFound,
        bigmgr.Conflict,
        bigmgr.PermissionDenied,
        bigmgr.InvalidInput,
        bigmgr.JobFailed,
    ):
        assert issubclass(cls, bigmgr.Error)
    assert issubclass(bigmgr.Error, Exception)

    with pytest.raises(bigmgr.NotFound, match="ghost"):
        client.cluster("ghost")
    assert_common_errors(client, cluster, "bad name!")
    with pytest.raises(bigmgr.PermissionDenied):
        bigmgr.connect(url, "bmt_wrong").clusters()
    with pytest.raises(bigmgr.InvalidInput):
        bigmgr.connect("https://127.0.0.1:1", "t")
    with pytest.raises(bigmgr.InvalidInput):
        bigmgr.connect("127.0.0.1:8080", "t")
    nobody = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(bigmgr.Error, match="127.0.0.1"):
        bigmgr.connect(nobody, "t", timeout=5.0).clusters()


def test_a_failed_job_raises_job_failed(client, cluster, h1):
    # A second hello, never installed: its check fails ("hello is not running").
    cluster.add_service("hello2", "demo", "hello", {"hello_server": ["h1"]})
    job = cluster.run("check", service="hello2")
    with pytest.raises(bigmgr.JobFailed) as info:
        job.wait(timeout=JOB_TIMEOUT)
    assert str(info.value)
    assert client.job(job.id).state == "FAILED"
    done = job.wait(timeout=JOB_TIMEOUT, check=False)
    assert done.state == "FAILED"
    failed = [t for s in done.stages for t in s.tasks if t.state != "SUCCEEDED"]
    assert failed and failed[0].exit_code not in (None, 0)
    lines = [l.line for l in done.logs(follow=False)]
    assert any("not running" in l for l in lines), lines


def test_advice_explains_a_failed_job(cluster, h1):
    """The advisor over REST: a check of a service never installed fails, and the finding
    about that job names its host and service and suggests retrying it."""
    cluster.add_service("hello3", "demo", "hello", {"hello_server": ["h1"]})
    job = cluster.run("check", service="hello3")
    assert job.wait(timeout=JOB_TIMEOUT, check=False).state == "FAILED"
    findings = cluster.advice(job=job.id)
    assert findings, "the failed check is explained"
    for f in findings:
        assert isinstance(f, bigmgr.Finding)
        assert f.rule.startswith("task.") and f.severity == "CRITICAL"
        assert (f.host, f.service, f.job) == ("h1", "hello3", job.id)
        assert f.evidence and f.hint
        assert f.actions[0]["path"] == f"/jobs/{job.id}/retry"
    assert all(x.service == "hello3" for x in cluster.advice(service="hello3"))
    assert cluster.advice(host="nowhere") == []
    with pytest.raises(bigmgr.NotFound):
        cluster.advice(job=987654)


def test_cancel(client):
    # Its own cluster, on a host no agent serves: the job can only wait, until canceled.
    c = client.create_cluster("py-cancel")
    c.add_host("nowhere", "127.0.0.9")
    c.add_service("hello", "demo", "hello", {"hello_server": ["nowhere"]})
    job = c.run("deploy", hosts=["nowhere"])
    assert job.state not in ("SUCCEEDED", "FAILED", "CANCELED")
    job.cancel()
    done = job.wait(timeout=30, check=False)
    assert done.state == "CANCELED"
    with pytest.raises(bigmgr.JobFailed):
        job.wait(timeout=30)
    with pytest.raises(bigmgr.Conflict):
        job.pause()


def run_example(name, *args):
    """Runs examples/python/<name> with this interpreter; its CompletedProcess."""
    return subprocess.run(
        [sys.executable, str(REPO / "examples" / "python" / name), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_client_examples_run(server, cluster, h1):
    url, token = server
    deployed = run_example("deploy.py", url, token, "--cluster", "py", "--service", "hello_ex", "--on", "h1")
    assert deployed.returncode == 0, deployed.stderr
    assert "STARTED" in deployed.stdout, deployed.stdout
    job = cluster.jobs()[0]
    assert job.command == "deploy"
    watched = run_example("watch_logs.py", str(job.id), url, token)
    assert watched.returncode == 0, watched.stderr
    assert "hello installed" in watched.stdout and "SUCCEEDED" in watched.stdout, watched.stdout
    cluster.run("stop", service="hello_ex").wait(timeout=JOB_TIMEOUT)


def test_cli_and_python_follow_one_job_and_see_every_line_once(server, cluster, h1):
    """One job followed at once by the CLI (`bigmgr job wait`) and by Python (`Job.logs`),
    both through `view::follow` over the server's event stream: each sees every one of the
    script's lines exactly once, in order, while the job runs."""
    url, token = server
    cluster.add_service("chatty", "chat", "chatty", {"chatty_server": ["h1"]})
    job = cluster.run("start", service="chatty")
    cli = subprocess.Popen(
        [str(_binary("bigmgr")), "job", "wait", str(job.id), "--server", url, "--token", token],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_clean_env(),
    )
    try:
        py_lines = [l.line for l in job.logs(follow=True) if l.line.startswith("chatty line ")]
        out, err = cli.communicate(timeout=JOB_TIMEOUT)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    want = [f"chatty line {i}" for i in range(1, CHATTY_LINES + 1)]
    assert py_lines == want, py_lines
    assert job.refresh().state == "SUCCEEDED"
    text = out.decode() + err.decode()
    assert cli.returncode == 0, text
    seen = [l[l.index("chatty line "):] for l in text.splitlines() if "chatty line " in l]
    assert seen == want, text
    assert f"job {job.id} SUCCEEDED" in text, text



def test_pipelines_are_checked_created_and_removed(client):
    cluster = client.create_cluster("py-pipes")
    cluster.add_host("pa", "127.0.0.8")
    cluster.add_host("pb", "127.0.0.9")
    assert_pipelines(cluster, "pa", "pb")


def test_a_pipeline_runs_on_the_agent(cluster, h1, tmp_path):
    """files → filter (2 replicas) → sink, all on the real agent h1: started through the
    server, FINISHED with every kept line once; a 409 is a Conflict and a 422 InvalidInput."""
    p = assert_pipeline_runs(cluster, tmp_path, "py-kept", "h1", ["h1"], "h1")
    assert {n.name: n.processed for n in p.status().nodes}["filter"] > 0
    with pytest.raises(bigmgr.InvalidInput, match="no unit 'nope'"):
        p.scale("nope", 2)
    assert p.scale("filter", 1).replicas == {"filter": 1}
    assert p.logs()[-1][1] == "run ended: every batch was processed"
