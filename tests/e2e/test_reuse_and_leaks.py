"""Reusing a cluster across runs only when its audit configuration matches, and no leaked clusters:
runs killed during creation and during tests are cleaned up by the next run, and a kind cluster the
plugin did not create is never touched."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_kind_audit.ownership import Fingerprint, Records

from .helpers import delete_cluster, foreign_cluster, node_containers

pytestmark = pytest.mark.e2e


REUSE_SUITE = """
import sys
from pytest_kind_audit import assert_audited, nodes

def test_run(audited_cluster):
    audited_cluster.kubectl("create", "namespace", "ns-{run}")
    assert_audited(verb="create", resource="namespaces", name="ns-{run}", count=1)
    # A reused cluster's session stream starts with this run: the first run's request is not in it.
    assert not audited_cluster.audit.events(verb="create", resource="namespaces", name="ns-first")[{index}:]
    # A reuse answers from the cluster's host record and reads its log without the Docker SDK (0.2 s to import).
    assert ("docker" in sys.modules) is {sdk}, sorted(m for m in sys.modules if m.startswith("docker"))
    # A reuse starts the log's reader as soon as it knows the node, and the log takes that one: one start.
    source = audited_cluster.audit.source
    assert (source.started_early, source.starts, nodes._early_shells) == ({early}, 1, {{}})
"""


@pytest.mark.usefixtures("state_dir")
def test_reuse_only_with_a_matching_audit_configuration(pytester: pytest.Pytester) -> None:
    name = "reuse-" + secrets.token_hex(3)
    args = ["--kind-audit-reuse-cluster", f"--kind-audit-cluster-name={name}", "-p", "no:cacheprovider"]
    try:
        pytester.makepyfile(test_reuse=REUSE_SUITE.format(run="first", index=1, sdk=True, early=False))
        t0 = time.monotonic()
        first = pytester.runpytest_subprocess(*args, timeout=900)
        fresh = time.monotonic() - t0
        first.assert_outcomes(passed=1)
        first.stdout.fnmatch_lines([f"kind-audit: level=Metadata, cluster={name} (created), *reuse=yes*",
                                    f"kind-audit: cluster {name} created 1 time, kept",
                                    f"kind-audit: cluster kept; delete it with: * delete cluster --name {name}"])  # fmt: skip
        assert node_containers(name) == [f"{name}-control-plane"], "a reuse cluster outlives its run"

        pytester.makepyfile(test_reuse=REUSE_SUITE.format(run="second", index=0, sdk=False, early=True))
        t0 = time.monotonic()
        second = pytester.runpytest_subprocess(*args, timeout=900)
        reused = time.monotonic() - t0
        second.assert_outcomes(passed=1)
        second.stdout.fnmatch_lines([f"kind-audit: level=Metadata, cluster={name} (reused), *",
                                     f"kind-audit: cluster {name} reused, kept"])  # fmt: skip
        print(f"reuse: fresh run {fresh:.1f}s, reused run {reused:.1f}s, ratio {fresh / reused:.1f}x")

        third = pytester.runpytest_subprocess(*args, "--kind-audit-level=RequestResponse", timeout=900)
        third.assert_outcomes(errors=1)
        third.stdout.fnmatch_lines([f"*kind-audit: cannot reuse cluster '{name}': audit policy differs (sha256 *"
                                    f" on the cluster, * requested). Delete it (* delete cluster --name {name})*"])  # fmt: skip
        third.stdout.no_fnmatch_line("*Traceback*")
        assert node_containers(name) == [f"{name}-control-plane"], "a mismatch never deletes the cluster"
    finally:
        delete_cluster(name)


def test_reusing_a_cluster_the_plugin_did_not_create_is_refused(pytester: pytest.Pytester, state_dir: Path) -> None:
    name = "foreign-" + secrets.token_hex(3)
    with foreign_cluster(name):
        pytester.makepyfile("def test_x(audited_cluster):\n    pass\n")
        result = pytester.runpytest_subprocess("--kind-audit-reuse-cluster", f"--kind-audit-cluster-name={name}",
                                               timeout=900)  # fmt: skip
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines([f"*cannot reuse cluster '{name}': it was not created by pytest-kind-audit*"])
        assert node_containers(name) == [f"{name}-control-plane"]


SLOW_SUITE = """
from collections.abc import Callable
from pathlib import Path
import time

def test_slow(audited_cluster):
    Path({marker!r}).touch()
    time.sleep(600)
"""


def start_run(pytester: pytest.Pytester, name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--kind-audit-cluster-name={name}"],
                            cwd=pytester.path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip


def kill_when(proc: subprocess.Popen[bytes], ready: Callable[[], object]) -> None:
    """Wait for ``ready()``, then SIGKILL the run and its children (kind included): no teardown, no
    sessionfinish, no cleanup by kind either."""
    deadline = time.monotonic() + 300
    while not ready():
        assert proc.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline, "the interruption point was never reached"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_the_next_run_removes_what_killed_runs_left(pytester: pytest.Pytester, state_dir: Path) -> None:
    during_creation, during_tests, next_run = ("kc-" + secrets.token_hex(3), "kt-" + secrets.token_hex(3),
                                               "nx-" + secrets.token_hex(3))  # fmt: skip
    foreign = "fg-" + secrets.token_hex(3)
    marker = pytester.path / "test-started"
    pytester.makepyfile(test_slow=SLOW_SUITE.format(marker=str(marker)))
    try:
        with foreign_cluster(foreign):
            # Two runs at once (so neither cleans up after the other): one killed while kind is creating
            # its node, one while a test runs on its finished cluster.
            creating, testing = start_run(pytester, during_creation), start_run(pytester, during_tests)
            kill_when(creating, lambda: node_containers(during_creation))
            assert node_containers(during_creation), "the killed run left a half-made cluster (as expected)"
            kill_when(testing, marker.exists)
            assert node_containers(during_tests), "the killed run left its cluster (as expected)"

            # A kept cluster someone deleted with kind: its record (and run directory) is all that is left.
            Records(state_dir / "clusters").write("kept-gone", Fingerprint(run_id="r0", policy_sha256="p", image="i",
                                                                           keep=True, owner_start="ended"))  # fmt: skip

            # 3. The next run removes both, names them, and leaves the foreign cluster alone.
            pytester.makepyfile(test_slow="def test_ok(audited_cluster):\n    pass\n")
            result = pytester.runpytest_subprocess(f"--kind-audit-cluster-name={next_run}", "-p", "no:cacheprovider",
                                                   timeout=900)  # fmt: skip
            result.assert_outcomes(passed=1)
            removed = set(re.findall(r"kind-audit: removed stale cluster (\S+):", result.stdout.str()))
            assert {during_creation, during_tests} <= removed
            assert foreign not in removed
            assert node_containers(during_creation) == [] and node_containers(during_tests) == []
            assert node_containers(next_run) == []
            assert node_containers(foreign) == [f"{foreign}-control-plane"], "never touch a cluster we did not make"
            assert not list((state_dir / "clusters").glob("*.json")), "no record outlives its cluster"
    finally:
        for name in (during_creation, during_tests, next_run):
            delete_cluster(name)
