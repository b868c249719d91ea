"""Follow a job's log live through a running `bigmgr serve`: every task's lines as the
scripts write them, until the job ends; exits 1 if it did not succeed.

Usage: python watch_logs.py JOB_ID [URL [TOKEN]]   (URL/TOKEN default to $BIGMGR_SERVER and
$BIGMGR_TOKEN)."""

import os
import sys

import bigmgr


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    job_id = int(sys.argv[1])
    url = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("BIGMGR_SERVER")
    token = sys.argv[3] if len(sys.argv) > 3 else os.environ.get("BIGMGR_TOKEN")
    if not url:
        print("give the server's URL (or set BIGMGR_SERVER)", file=sys.stderr)
        return 2
    job = bigmgr.connect(url, token).job(job_id)
    print(f"{job!r}")
    for line in job.logs(follow=True):
        stream = "!" if line.stream == "stderr" else " "
        print(f"{line.host:>8} task {line.task:<5}{stream} {line.line}", flush=True)
    job.refresh()
    print(f"{job!r}")
    return 0 if job.state == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())
