"""Whole-run timings on real clusters (needs Docker, kind and a node image, like the e2e tests).

1. Time to the first test: a fresh cluster against a reused one (--kind-audit-reuse-cluster), same run.
2. Wall time of an I/O-bound audited suite (each test waits 1 s, as for a controller to reconcile, around
   three kubectl calls) at -n 2 against -n 0, on the same reused cluster. The machine has 2 cores, which
   kubectl, the API server and etcd share.

Run: PATH=$PWD/bin:$PATH PYTEST_KIND_AUDIT_IMAGE=kind-audit-ci/node:v1.34.4-3 python bench/bench_runs.py
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_kind_audit.deletion import delete_cluster
from pytest_kind_audit.ownership import Records

FIRST_TEST = """
import time
from pathlib import Path

def test_first(audited_cluster):
    Path("first-test-at").write_text(repr(time.time()))
"""

IO_SUITE = """
import time
import pytest
from pytest_kind_audit import assert_audited

@pytest.mark.parametrize("i", range({n}))
def test_io(audited_cluster, i):
    name = f"io-{{i}}-{{audited_cluster.identity[-3:]}}"
    audited_cluster.kubectl("create", "configmap", name, "-n", "default", "--from-literal=i=1")
    time.sleep(1)  # waiting for a controller to reconcile, as operator tests do
    audited_cluster.kubectl("get", "configmap", name, "-n", "default")
    audited_cluster.kubectl("delete", "configmap", name, "-n", "default")
    assert_audited(verb="delete", resource="configmaps", name=name)
"""


def run(directory: Path, *args: str) -> float:
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=directory,
                          capture_output=True, text=True, check=False)  # fmt: skip
    if proc.returncode != 0:
        sys.exit(f"pytest {' '.join(args)} failed:\n{proc.stdout[-2000:]}")
    return time.time() - t0


def main() -> None:
    name = "bench-" + secrets.token_hex(3)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        os.environ["PYTEST_KIND_AUDIT_REQUIRE"] = "1"
        (d / "test_first.py").write_text(FIRST_TEST)
        try:
            t0 = time.time()
            run(d, "--kind-audit-reuse-cluster", f"--kind-audit-cluster-name={name}")
            fresh = float((d / "first-test-at").read_text()) - t0
            t0 = time.time()
            run(d, "--kind-audit-reuse-cluster", f"--kind-audit-cluster-name={name}")
            reused = float((d / "first-test-at").read_text()) - t0
            print(f"time to first test: fresh cluster {fresh:.1f}s, reused {reused:.1f}s, ratio {fresh / reused:.1f}x")
            (d / "test_first.py").unlink()
            n = 24
            (d / "test_io.py").write_text(IO_SUITE.format(n=n))
            serial = run(d, "--kind-audit-reuse-cluster", f"--kind-audit-cluster-name={name}", "-p", "no:xdist")
            parallel = run(d, "--kind-audit-reuse-cluster", f"--kind-audit-cluster-name={name}", "-n", "2")
            print(f"{n} I/O-bound audited tests on one reused cluster: -n 0 {serial:.1f}s, -n 2 {parallel:.1f}s, "
                  f"speed-up {serial / parallel:.2f}x")  # fmt: skip
        finally:
            if delete_cluster("kind", name).deleted:  # explicit kubeconfig: ~/.kube/config is never edited
                Records().remove(name)  # a kept cluster's record is never reaped: it goes with the cluster


if __name__ == "__main__":
    main()
