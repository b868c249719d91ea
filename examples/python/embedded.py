"""bigmgr embedded in-process: deploy the demo stack's hello on two in-process agents, wait
with progress, then stop it. Usage: python embedded.py [DATA_DIR] (default: a temporary dir)."""

import sys, tempfile
from pathlib import Path
import bigmgr

data = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="bigmgr-"))
stacks = Path(__file__).resolve().parents[2] / "stacks"
agents = [("h1", "127.0.0.2"), ("h2", "127.0.0.3")]
with bigmgr.Embedded(str(data / "bigmgr.db"), stacks=[str(stacks)], agents=agents) as emb:
    cluster = emb.create_cluster("demo")
    for name, address in agents:
        cluster.add_host(name, address)
    hello = cluster.add_service("hello", "demo", "hello", {"hello_server": ["h1", "h2"]})
    cluster.run("deploy").wait(progress=True)
    print(hello.refresh().units)
    cluster.run("stop").wait(progress=True)
