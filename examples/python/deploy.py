"""Deploy a service through a running `bigmgr serve`: connect, make sure the cluster and its
hosts exist, add the demo stack's hello, deploy it and wait with progress.

Usage: python deploy.py [URL [TOKEN]] [--cluster NAME] [--hosts h1=127.0.0.2,h2=127.0.0.3]
URL and TOKEN default to $BIGMGR_SERVER and $BIGMGR_TOKEN."""

import argparse
import os
import sys

import bigmgr


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url", nargs="?", default=os.environ.get("BIGMGR_SERVER"))
    p.add_argument("token", nargs="?", default=os.environ.get("BIGMGR_TOKEN"))
    p.add_argument("--cluster", default="demo")
    p.add_argument("--service", default="hello", help="the instance's name")
    p.add_argument("--hosts", default="", help="hosts to add first: name=address,...")
    p.add_argument("--on", default="", help="hosts to place hello_server on (default: all)")
    args = p.parse_args()
    if not args.url:
        p.error("give the server's URL (or set BIGMGR_SERVER)")

    client = bigmgr.connect(args.url, args.token)
    try:
        cluster = client.cluster(args.cluster)
    except bigmgr.NotFound:
        cluster = client.create_cluster(args.cluster)
    known = {h.name for h in cluster.hosts()}
    for pair in filter(None, args.hosts.split(",")):
        name, address = pair.split("=", 1)
        if name not in known:
            cluster.add_host(name, address)
    on = [h for h in args.on.split(",") if h] or [h.name for h in cluster.hosts()]
    if not on:
        p.error("the cluster has no hosts: add some with --hosts h1=127.0.0.2")
    try:
        service = cluster.add_service(args.service, "demo", "hello", {"hello_server": on})
        print(f"added {service!r}")
    except bigmgr.Conflict:
        print(f"{args.service} is already there")
    job = cluster.run("deploy", service=args.service)
    print(f"submitted {job!r}")
    try:
        job.wait(progress=True)
    except bigmgr.JobFailed as e:
        print(f"failed: {e}", file=sys.stderr)
        return 1
    for unit in cluster.service(args.service).units:
        print(unit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
