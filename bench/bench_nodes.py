"""What nodes cost, on real clusters (needs Docker, kind and a node image, like the e2e tests).

1. Time to the first test of a fresh run with one node against one with a control plane and two workers
   (a kind config passed with --kind-audit-kind-config), as paired runs, alternating, medians. Each run
   creates, tests and deletes its cluster; "first test" is when the test body starts.
2. Audit events per minute in an idle cluster, per node image: what the cluster does by itself (controllers,
   leases, and with an image lacking CoreDNS and kube-proxy images, their pods' sandboxes restarting).

Run: PATH=$PWD/bin:$PATH PYTEST_KIND_AUDIT_IMAGE=kind-audit-ci/node:v1.34.4-3 python bench/bench_nodes.py [PAIRS]
     [--idle IMAGE,IMAGE...] [--settle S] [--minutes M]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _cluster import bench_cluster

FIRST_TEST = """
import time
from pathlib import Path

def test_first(audited_cluster):
    Path("first-test-at").write_text(repr(time.time()))
"""

WORKERS = """kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
- role: worker
- role: worker
"""


def first_test(directory: Path, *args: str) -> tuple[float, float]:
    """Seconds to the first test and for the whole run (creation, the test, deletion)."""
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--kind-audit-require",
                           *args], cwd=directory, capture_output=True, text=True, check=False)  # fmt: skip
    total = time.time() - t0
    if proc.returncode != 0:
        sys.exit(f"pytest {' '.join(args)} failed:\n{proc.stdout[-2000:]}")
    return float((directory / "first-test-at").read_text()) - t0, total


def node_cost(pairs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "test_first.py").write_text(FIRST_TEST)
        (d / "workers.yaml").write_text(WORKERS)
        one: list[tuple[float, float]] = []
        three: list[tuple[float, float]] = []
        for i in range(pairs):
            runs = [(one, ()), (three, (f"--kind-audit-kind-config={d / 'workers.yaml'}",))]
            for sink, args in runs if i % 2 == 0 else reversed(runs):
                sink.append(first_test(d, *args))
        for label, got in (("1 node", one), ("1 control plane + 2 workers", three)):
            firsts, totals = [f for f, _ in got], [t for _, t in got]
            runs = ", ".join(f"{f:.1f}" for f in firsts)
            print(f"{label:30s} first test {statistics.median(firsts):5.1f}s  "
                  f"whole run {statistics.median(totals):5.1f}s  (runs: {runs})")  # fmt: skip
        per_worker = (statistics.median(f for f, _ in three) - statistics.median(f for f, _ in one)) / 2
        print(f"each worker adds {per_worker:.1f}s to the time to the first test (median of {pairs} pairs)")


def idle_events(image: str, settle: float, minutes: float) -> None:
    os.environ["PYTEST_KIND_AUDIT_IMAGE"] = image
    with bench_cluster("bench-idle") as (cluster, _env):
        time.sleep(settle)  # past start-up: what remains is what an idle cluster does by itself
        log = cluster.audit
        log.poll()
        before = len(log)
        time.sleep(minutes * 60)
        log.poll()
        per_minute = (len(log) - before) / minutes
        print(f"{image}: {per_minute:.0f} audit events per minute idle ({settle:.0f}s after creation)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pairs", nargs="?", type=int, default=2)
    parser.add_argument("--idle", default="", help="comma-separated node images to measure idle events for")
    parser.add_argument("--settle", type=float, default=30.0)
    parser.add_argument("--minutes", type=float, default=1.0)
    args = parser.parse_args()
    if args.pairs:
        node_cost(args.pairs)
    for image in filter(None, args.idle.split(",")):
        idle_events(image, args.settle, args.minutes)


if __name__ == "__main__":
    main()
