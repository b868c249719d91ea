"""The embedded example runs as documented (the client examples run in test_client.py,
against its server)."""

import subprocess
import sys
from pathlib import Path

from conftest import REPO, kill_pid_files


def test_the_embedded_example_deploys_and_stops_hello(tmp_path: Path):
    try:
        done = subprocess.run(
            [sys.executable, str(REPO / "examples" / "python" / "embedded.py"), str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.count("STARTED") == 2, done.stdout
    finally:
        kill_pid_files(tmp_path / "agents")
