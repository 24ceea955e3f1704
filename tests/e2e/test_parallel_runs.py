"""pytest-xdist: one cluster per run, deleted once after every worker has finished, and per-test windows
that stay exact while workers overlap. Each run is a real pytest process with a real cluster."""

from __future__ import annotations

import secrets

import pytest

from .helpers import delete_cluster, node_containers

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("whole_run_env")]


SHARED_SUITE = """
import os, time
from pathlib import Path
from pytest_kind_audit import assert_audited
import pytest

SEEN = Path({seen!r})

@pytest.mark.parametrize("i", range({tests}))
def test_uses_the_cluster(audited_cluster, i):
    with SEEN.open("a") as f:
        f.write(f"{{os.environ['PYTEST_XDIST_WORKER']}} {{audited_cluster.container.id}}\\n")
    if i == 0:
        time.sleep(8)  # still using the cluster while the other workers have finished
    name = f"shared-{{i}}"
    audited_cluster.kubectl("create", "namespace", name)
    assert_audited(verb="create", resource="namespaces", name=name, count=1)
"""


@pytest.mark.parametrize("workers", [2, 4])
def test_one_cluster_for_all_workers_deleted_once_at_the_end(pytester: pytest.Pytester, workers: int) -> None:
    name = f"xd{workers}-" + secrets.token_hex(3)
    seen = pytester.path / "seen.txt"
    pytester.makepyfile(test_shared=SHARED_SUITE.format(seen=str(seen), tests=workers * 2))
    try:
        result = pytester.runpytest_subprocess(f"-n{workers}", f"--kind-audit-cluster-name={name}",
                                               "-p", "no:cacheprovider", timeout=900)  # fmt: skip
        result.assert_outcomes(passed=workers * 2)
        result.stdout.fnmatch_lines(
            [f"kind-audit: cluster {name} created 1 time, shared by {workers} workers, deleted in *s"]
        )
        rows = [line.split() for line in seen.read_text().splitlines()]
        assert len({worker for worker, _ in rows}) == workers, "every worker used the cluster"
        assert len({container for _, container in rows}) == 1, "all workers used one and the same cluster"
        assert node_containers(name) == []
    finally:
        delete_cluster(name)


OVERLAP_SUITE = """
import re, time
from pathlib import Path
from pytest_kind_audit import assert_audited, assert_not_audited
import pytest

BARRIER = Path({barrier!r})

def meet(me, other):
    (BARRIER / me).touch()
    deadline = time.monotonic() + 120
    while not (BARRIER / other).exists():
        assert time.monotonic() < deadline, "the other test never started"
        time.sleep(0.05)

@pytest.mark.parametrize("me,other", [("a", "b"), ("b", "a")])
def test_overlapping(audited_cluster, audit_log, me, other):
    meet(me, other)
    audited_cluster.kubectl("create", "namespace", f"ov-{{me}}")
    audited_cluster.kubectl("create", "configmap", "c", "-n", "default", f"--from-literal=who={{me}}", "--dry-run=server")
    time.sleep(2)  # the other test's requests land inside this test's window
    mine = assert_audited(verb="create", resource="namespaces", count=1)  # no name: only my own create
    assert mine[0].name == f"ov-{{me}}"
    assert_not_audited(name=f"ov-{{other}}", stage=None)
    theirs = audited_cluster.audit.events(verb="create", resource="namespaces", name=f"ov-{{other}}")
    assert len(theirs) == 1 and theirs[0].request_received_timestamp >= audit_log.start, "the tests overlapped"
    assert theirs[0].user.username != audited_cluster.identity
    assert {{e.user.username for e in audit_log.all() if e.user.username.startswith("kind-audit-worker-")}} == {{audited_cluster.identity}}
"""


def test_windows_stay_exact_while_workers_overlap(pytester: pytest.Pytester) -> None:
    name = "ov-" + secrets.token_hex(3)
    barrier = pytester.mkdir("barrier")
    pytester.makepyfile(test_overlap=OVERLAP_SUITE.format(barrier=str(barrier)))
    try:
        result = pytester.runpytest_subprocess("-n2", f"--kind-audit-cluster-name={name}", "-p", "no:cacheprovider",
                                               timeout=900)  # fmt: skip
        result.assert_outcomes(passed=2)
    finally:
        delete_cluster(name)


KILLED_WORKER_SUITE = """
import os, signal

def test_a_worker_dies(audited_cluster):
    os.kill(os.getpid(), signal.SIGKILL)

def test_b(audited_cluster):
    audited_cluster.kubectl("get", "namespaces")

def test_c(audited_cluster):
    audited_cluster.kubectl("get", "namespaces")
"""


@pytest.mark.parametrize("round_", [1, 2, 3])
def test_a_killed_worker_does_not_leak_the_cluster(pytester: pytest.Pytester, round_: int) -> None:
    """A soak: three rounds in a row, each leaving no container, each summary true."""
    name = f"kw{round_}-" + secrets.token_hex(3)
    pytester.makepyfile(test_killed=KILLED_WORKER_SUITE)
    try:
        result = pytester.runpytest_subprocess("-n2", f"--kind-audit-cluster-name={name}", "-p", "no:cacheprovider",
                                               timeout=900)  # fmt: skip
        result.stdout.fnmatch_lines(["*worker 'gw*' crashed*"])
        result.assert_outcomes(passed=2, failed=1)
        result.stdout.fnmatch_lines([f"kind-audit: cluster {name} created 1 time, shared by * workers, deleted in *s*"])
        assert node_containers(name) == []
        assert result.ret == pytest.ExitCode.TESTS_FAILED  # the crashed worker's test, nothing else
    finally:
        delete_cluster(name)
