"""The long-lived reader of the audit log in the node: one per log, started again when it dies (nothing
lost, nothing twice), gone when closed or when its process dies, and one clear line when the node
cannot be read (paused, killed), never a hang."""

from __future__ import annotations

import collections
import secrets
import subprocess
import sys
import time

import pytest

from pytest_kind_audit import AuditedCluster, AuditLog, DockerLogSource, assert_audited
from pytest_kind_audit.nodes import READER_NAME

pytestmark = pytest.mark.e2e


def readers(cluster: AuditedCluster) -> list[str]:
    """The reader shells running in the node (their pids)."""
    return cluster.exec_in_node("pgrep", "-f", READER_NAME).split()


def wait_until(condition: object, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_one_reader_serves_every_read_and_a_dead_one_is_replaced(
    audited_cluster: AuditedCluster, namespace: str
) -> None:
    source = audited_cluster.audit.source
    assert isinstance(source, DockerLogSource)
    audited_cluster.kubectl("create", "configmap", "before", "-n", namespace)
    assert_audited(verb="create", resource="configmaps", namespace=namespace, name="before")
    starts = source.starts
    for _ in range(20):
        audited_cluster.audit.poll()
    assert source.starts == starts, "reads reuse the running reader"
    audited_cluster.exec_in_node("pkill", "-f", READER_NAME)  # every reader in the node dies
    audited_cluster.kubectl("create", "configmap", "after", "-n", namespace)
    assert_audited(verb="create", resource="configmaps", namespace=namespace, name="after", count=1)
    assert source.starts == starts + 1, "the reader was started again"
    seen = collections.Counter((e.audit_id, e.stage) for e in audited_cluster.audit.all())
    assert [k for k, n in seen.items() if n > 1] == [], "nothing read twice across the restart of the reader"
    assert_audited(verb="create", resource="configmaps", namespace=namespace, name="before", count=1)


def test_closing_or_killing_the_reading_process_ends_its_reader(audited_cluster: AuditedCluster) -> None:
    before = set(readers(audited_cluster))
    log = AuditLog(DockerLogSource(audited_cluster.container))
    log.poll()
    mine = set(readers(audited_cluster)) - before
    assert len(mine) == 1
    log.close()
    wait_until(lambda: not (set(readers(audited_cluster)) & mine), "the closed reader is still running")

    # A process that dies without closing anything (SIGKILL) leaves no reader either.
    script = (
        "import os, signal, docker\n"
        "from pytest_kind_audit import AuditLog, DockerLogSource\n"
        f"log = AuditLog(DockerLogSource(docker.from_env().containers.get({audited_cluster.node!r})))\n"
        "log.poll()\nprint('reading', flush=True)\nos.kill(os.getpid(), signal.SIGKILL)\n"
    )
    before = set(readers(audited_cluster))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert proc.stdout.strip() == "reading" and proc.returncode == -9
    wait_until(lambda: set(readers(audited_cluster)) <= before, "a killed process left its reader in the node")


def test_a_paused_node_fails_the_assert_with_one_line(audited_cluster: AuditedCluster) -> None:
    name = "paused-" + secrets.token_hex(3)
    audited_cluster.audit.poll()
    subprocess.run(["docker", "pause", audited_cluster.node], check=True, capture_output=True)
    try:
        started = time.monotonic()
        with pytest.raises(AssertionError) as info:
            assert_audited(verb="create", resource="configmaps", name=name, timeout=1)
        waited = time.monotonic() - started
    finally:
        subprocess.run(["docker", "unpause", audited_cluster.node], check=True, capture_output=True)
    message = str(info.value)
    assert message.splitlines()[0] == (
        f"cannot read the audit log: the audit log stream of {audited_cluster.node} is gone: "
        "the node container is paused"
    )
    assert waited < 30, f"the assert hung for {waited:.0f}s"
    # And the stream comes back once the node runs again.
    audited_cluster.kubectl("create", "configmap", name, "-n", "default")
    assert_audited(verb="create", resource="configmaps", name=name, count=1)


KILLED_NODE_SUITE = """
import subprocess
from pytest_kind_audit import assert_audited

def test_node_killed_mid_test(audited_cluster):
    audited_cluster.audit.poll()
    subprocess.run(["docker", "kill", audited_cluster.node], check=True, capture_output=True)
    assert_audited(verb="create", resource="namespaces", name="never", timeout=2)
"""


def test_a_killed_node_fails_the_assert_with_one_line_and_is_still_cleaned_up(
    pytester: pytest.Pytester, state_dir: object
) -> None:
    from .helpers import delete_cluster, node_containers

    name = "kn-" + secrets.token_hex(3)
    pytester.makepyfile(test_killed_node=KILLED_NODE_SUITE)
    try:
        result = pytester.runpytest_subprocess(f"--kind-audit-cluster-name={name}", "-p", "no:cacheprovider",
                                               timeout=900)  # fmt: skip
        result.assert_outcomes(failed=1)
        gone = f"the audit log stream of {name}-control-plane is gone: the node container is exited (exit code 137)"
        result.stdout.fnmatch_lines([f"E   *cannot read the audit log: {gone}"])
        result.stdout.fnmatch_lines([f"kind-audit: cluster {name} created 1 time, deleted in *s*"])
        assert node_containers(name) == []
    finally:
        delete_cluster(name)
