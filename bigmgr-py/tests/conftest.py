"""Fixtures for bigmgr's Python tests: an Embedded on a temporary SQLite file with in-process
agents h1 and h2 (127.0.0.2 and 127.0.0.3) and the repository's stacks/, a cluster with the
demo stack's hello and greeter deployed, and a tiny stack of our own in a temporary directory.

Every daemon a script started is stopped by a `stop` job, and then killed by the pid files
under the agents' roots (as the Rust test harness does), whatever happened in the test."""

import contextlib
import os
import signal
import textwrap
import time
from pathlib import Path

import pytest

import bigmgr

REPO = Path(__file__).resolve().parents[2]
STACKS = REPO / "stacks"
AGENTS = [("h1", "127.0.0.2"), ("h2", "127.0.0.3")]


def kill_pid_files(root: Path) -> None:
    """SIGKILLs the process group and the process of every `*.pid` file below `root` (the
    Python tests' copy of the Rust harness's `kill_daemons`)."""
    for pidfile in root.rglob("*.pid"):
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            continue
        if pid <= 1:
            # 0 and 1 would be this process group and init: never a daemon of a test.
            continue
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError, OSError):
                pass


@contextlib.contextmanager
def cleaned_up(stop, daemons: Path):
    """Runs the body, then `stop()`, then kills every daemon left under `daemons` by its pid
    files, whatever happened."""
    try:
        yield
    finally:
        try:
            stop()
        finally:
            kill_pid_files(daemons)


def assert_common_errors(session, cluster, bad_name: str) -> None:
    """The errors a `Client` and an `Embedded` raise alike: `NotFound` for a service or job
    that does not exist, `Conflict` for a cluster name taken, `InvalidInput` for a bad name."""
    with pytest.raises(bigmgr.NotFound):
        cluster.service("ghost")
    with pytest.raises(bigmgr.NotFound):
        session.job(999999)
    with pytest.raises(bigmgr.Conflict):
        session.create_cluster(cluster.name)
    with pytest.raises(bigmgr.InvalidInput):
        session.create_cluster(bad_name)


def assert_restore_round_trip(cluster, hello, name: str, at: int) -> list:
    """Snapshot `name`, taken at service hello's config version `at`, is taken only once;
    after a change, restoring it makes one new version of hello equal to version `at`;
    restoring again changes nothing; an unknown snapshot is `NotFound`. Returns what the first
    restore made."""
    with pytest.raises(bigmgr.Conflict):
        cluster.snapshot(name)
    hello.update_configs({"hello.conf": {"greeting": "changed"}})
    restored = cluster.restore(name)
    assert [(r.service, r.version) for r in restored] == [("hello", at + 2)]
    assert restored[0].configs == hello.config_version_at(at).configs
    assert cluster.restore(name) == [], "nothing changed since"
    with pytest.raises(bigmgr.NotFound):
        cluster.restore("nope")
    return restored


def open_embedded(tmp: Path, stacks=None, author="pytest") -> bigmgr.Embedded:
    return bigmgr.Embedded(
        str(tmp / "bigmgr.db"),
        stacks=[str(STACKS)] if stacks is None else stacks,
        agents=AGENTS,
        root=str(tmp / "agents"),
        author=author,
    )


def add_hosts(cluster: bigmgr.Cluster) -> None:
    for name, address in AGENTS:
        cluster.add_host(name, address)


@pytest.fixture
def embedded(tmp_path):
    """A fresh Embedded (repo stacks, agents h1/h2), closed and cleaned up afterwards."""
    emb = open_embedded(tmp_path)
    with cleaned_up(emb.close, tmp_path / "agents"):
        yield emb


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """Cluster `demo` with hello (h1, h2) and greeter (servers h1, h2; client h1) deployed;
    yields (embedded, cluster, deploy job, stderr of the deploy's progress)."""
    tmp = tmp_path_factory.mktemp("deployed")
    emb = open_embedded(tmp)
    cluster = None
    with cleaned_up(emb.close, tmp / "agents"):
        try:
            cluster = emb.create_cluster("demo")
            add_hosts(cluster)
            cluster.add_service("hello", "demo", "hello", {"hello_server": ["h1", "h2"]})
            cluster.add_service(
                "greeter",
                "demo",
                "greeter",
                {"greeter_server": ["h1", "h2"], "greeter_client": ["h1"]},
            )
            job = cluster.run("deploy")
            yield emb, cluster, job
        finally:
            if cluster is not None:
                cluster.run("stop").wait(timeout=120, check=False)


TINY_OK = """\
#!/bin/sh
# A do-nothing service: every command succeeds and says so.
echo "$1 ok on ${BIGMGR_HOST:-?}"
exit 0
"""

TINY_BAD = """\
#!/bin/sh
# Fails to start, on purpose.
case "$1" in
  start) echo "boom: tiny_bad refuses to start on ${BIGMGR_HOST:-?}" >&2; exit 1 ;;
  *) echo "$1 ok"; exit 0 ;;
esac
"""


def write_service(version_dir: Path, name: str, script: str) -> None:
    d = version_dir / name
    (d / "scripts").mkdir(parents=True)
    (d / "service.toml").write_text(
        textwrap.dedent(
            f"""\
            [service]
            name = "{name}"
            version = "1.0.0"
            description = "A test service."

            [[component]]
            name = "{name}_server"
            category = "server"
            cardinality = "1+"
            """
        )
    )
    s = d / "scripts" / f"{name}_server.sh"
    s.write_text(script)
    s.chmod(0o755)


@pytest.fixture
def tiny_stacks(tmp_path):
    """A stack root holding stack `tiny` 1.0.0 with services `ok` and `bad`; returns the root."""
    root = tmp_path / "tiny-stacks"
    version_dir = root / "tiny" / "1.0.0"
    write_service(version_dir, "ok", TINY_OK)
    write_service(version_dir, "bad", TINY_BAD)
    return root


PIPELINE = """name = "sorted"

[sources.files]
kind = "dir"
host = "{a}"
path = "/data/in"

[units.filter]
program = "/usr/bin/grep"
kind = "non-blocking"
replicas = 2
hosts = ["{a}", "{b}"]
inputs = ["files"]

[sinks.out]
kind = "dir"
host = "{b}"
path = "/data/out"
inputs = ["filter"]
"""


def assert_pipelines(cluster: bigmgr.Cluster, a: str, b: str) -> None:
    """Pipelines through either backend: a definition with a cycle and an unknown input is
    refused naming both with their lines, nothing is created; a good one is created, listed,
    read and removed."""
    good = PIPELINE.format(a=a, b=b)
    bad = good.replace('inputs = ["files"]', 'inputs = ["files", "filter", "nowhere"]')
    with pytest.raises(bigmgr.InvalidInput) as e:
        cluster.create_pipeline(bad)
    line = bad.splitlines().index('inputs = ["files", "filter", "nowhere"]') + 1
    assert f"line {line}: units.filter.inputs: 'nowhere' is no source" in str(e.value)
    assert "cycle" in str(e.value)
    assert cluster.pipelines() == []
    p = cluster.create_pipeline(good)
    assert (p.name, p.state, p.definition) == ("sorted", "CREATED", good)
    assert [q.name for q in cluster.pipelines()] == ["sorted"]
    assert cluster.pipeline("sorted").definition == good
    with pytest.raises(bigmgr.Conflict):
        cluster.create_pipeline(good)
    cluster.remove_pipeline("sorted")
    with pytest.raises(bigmgr.NotFound):
        cluster.pipeline("sorted")


KEEP_FILTER = """\
#!/bin/sh
# A pipeline unit: keeps the lines of its batch that contain `keep`.
set -e
cat "$1"/* | grep keep > "$2/part" || true
"""

# The source's files: 10 lines (4 batches of at most 3 records) and 5 lines (2 batches).
PIPELINE_INPUT = {
    "a.txt": [f"keep a{i}" if i % 2 == 0 else f"drop a{i}" for i in range(10)],
    "b.txt": [f"keep b{i}" if i % 3 == 0 else f"drop b{i}" for i in range(5)],
}
PIPELINE_BATCHES = 6

RUNNING_PIPELINE = """name = "{name}"

[sources.files]
kind = "dir"
host = "{source}"
path = "{input}"
records = 3

[units.filter]
program = "{program}"
kind = "non-blocking"
replicas = 2
hosts = {hosts}
inputs = ["files"]

[sinks.out]
kind = "dir"
host = "{sink}"
path = "{out}"
inputs = ["filter"]
"""


def runnable_pipeline(tmp: Path, name: str, source: str, hosts: list, sink: str):
    """A pipeline `name` that runs: `files` (the files of PIPELINE_INPUT under `tmp`, on host
    `source`) → `filter` (KEEP_FILTER, 2 replicas on `hosts`) → `out` (a directory under `tmp`
    on host `sink`). Returns its definition, the sink's directory and the lines it must end
    up holding, sorted."""
    d = tmp / name
    input_dir, out = d / "in", d / "out"
    input_dir.mkdir(parents=True)
    out.mkdir()
    for f, lines in PIPELINE_INPUT.items():
        (input_dir / f).write_text("".join(l + "\n" for l in lines))
    program = d / "filter.sh"
    program.write_text(KEEP_FILTER)
    program.chmod(0o755)
    definition = RUNNING_PIPELINE.format(
        name=name,
        source=source,
        input=input_dir,
        program=program,
        hosts="[" + ", ".join(f'"{h}"' for h in hosts) + "]",
        sink=sink,
        out=out,
    )
    want = sorted(l for lines in PIPELINE_INPUT.values() for l in lines if "keep" in l)
    return definition, out, want


def sink_lines(out: Path) -> list:
    """Every line of every file the sink wrote below `out`, sorted."""
    return sorted(
        line for f in out.rglob("*") if f.is_file() for line in f.read_text().splitlines()
    )


def wait_pipeline(p: bigmgr.Pipeline, state: str, timeout: float = 60.0) -> bigmgr.Pipeline:
    """Polls pipeline `p` until it is in `state` (failing at once, with its message and log,
    if its run FAILED instead) for at most `timeout` seconds; returns it."""
    deadline = time.monotonic() + timeout
    while p.refresh().state != state:
        if p.state == "FAILED":
            pytest.fail(f"pipeline {p.name} FAILED: {p.message}; its log: {p.logs()}")
        if time.monotonic() >= deadline:
            pytest.fail(
                f"pipeline {p.name} is still {p.state} after {timeout}s, not {state}; "
                f"its log: {p.logs()}"
            )
        time.sleep(0.2)
    return p


def assert_pipeline_runs(cluster: bigmgr.Cluster, tmp: Path, name: str, source: str,
                         hosts: list, sink: str) -> bigmgr.Pipeline:
    """Through either backend: pipeline `name` (see `runnable_pipeline`) is created, started
    (RUNNING), and FINISHED within 60 s with its sink holding every kept line exactly once and
    nothing else; `pause()` on a FINISHED pipeline is a `Conflict` naming its state. Returns
    the pipeline, FINISHED."""
    definition, out, want = runnable_pipeline(tmp, name, source, hosts, sink)
    p = cluster.create_pipeline(definition)
    assert (p.state, p.message, p.replicas) == ("CREATED", None, {})
    assert p.start() is p
    assert p.state in ("RUNNING", "FINISHED"), p.state
    wait_pipeline(p, "FINISHED")
    assert p.message == "every batch was processed"
    assert sink_lines(out) == want
    with pytest.raises(bigmgr.Conflict, match="FINISHED"):
        p.pause()
    assert p.refresh().state == "FINISHED"
    return p
