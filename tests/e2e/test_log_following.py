"""The session's event stream on a real cluster whose log rotates (1 MB, set in pyproject.toml) and whose
API server restarts: every event exactly once."""

from __future__ import annotations

import collections
import json
import os
import time

import pytest

from pytest_kind_audit import AuditedCluster, assert_audited
from pytest_kind_audit.kindconfig import LOG_DIR

pytestmark = pytest.mark.e2e


def no_duplicates(cluster: AuditedCluster) -> None:
    seen = collections.Counter((e.audit_id, e.stage) for e in cluster.audit.all())
    repeated = {k: n for k, n in seen.items() if n > 1}
    assert not repeated, f"events read more than once: {list(repeated)[:5]}"


def test_rotation_loses_and_repeats_nothing(audited_cluster: AuditedCluster, namespace: str) -> None:
    source = audited_cluster.audit.source
    rotations_before = source.rotations  # type: ignore[attr-defined]
    big = "x" * 150_000  # each create logs ~300 kB at RequestResponse: request and response bodies
    names = [f"big-{i}" for i in range(12)]
    for name in names:
        manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
                    "data": {"blob": big}}  # fmt: skip
        audited_cluster.kubectl("create", "-f", "-", input=json.dumps(manifest))
        audited_cluster.audit.poll()  # read between rotations, as a long test would
    for name in names:
        (event,) = assert_audited(verb="create", resource="configmaps", namespace=namespace, name=name)
        assert event.request_object is not None and len(event.request_object["data"]["blob"]) == len(big)
    backups = audited_cluster.exec_in_node("sh", "-c", f"ls {LOG_DIR}/kube-apiserver-audit-*.log").split()
    assert len(backups) >= 2, "the log did not rotate: is kind_audit_log_maxsize set?"
    assert source.rotations > rotations_before  # type: ignore[attr-defined]
    assert source.lost_files == 0  # type: ignore[attr-defined]
    no_duplicates(audited_cluster)


def wait_ready(cluster: AuditedCluster, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cluster.kubectl("get", "--raw", "/readyz", check=False).strip() == "ok":
            return
        time.sleep(1)
    raise AssertionError("the API server did not come back")


def test_api_server_restart_loses_and_repeats_nothing(audited_cluster: AuditedCluster) -> None:
    before, after = "before-" + os.urandom(3).hex(), "after-" + os.urandom(3).hex()
    audited_cluster.kubectl("create", "namespace", before)
    assert_audited(verb="create", resource="namespaces", name=before, count=1)  # read before the restart
    # A crash: the kubelet restarts the static pod within seconds (a SIGTERM'd API server first drains its
    # watches for about a minute, which this test does not need to wait for).
    audited_cluster.exec_in_node("pkill", "-KILL", "-f", "^kube-apiserver")
    time.sleep(2)
    wait_ready(audited_cluster)
    audited_cluster.kubectl("create", "namespace", after)
    assert_audited(verb="create", resource="namespaces", name=before, count=1)
    assert_audited(verb="create", resource="namespaces", name=after, count=1)
    no_duplicates(audited_cluster)
    for name in (before, after):
        audited_cluster.kubectl("delete", "namespace", name, "--wait=false")
