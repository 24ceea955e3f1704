"""The audit_namespace fixture and golden audit trails, on the session's real cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.unit.test_readme import README, readme_block

from pytest_kind_audit import AuditedCluster, AuditWindow
from pytest_kind_audit.namespaces import fresh_namespace

pytestmark = pytest.mark.e2e


def pod(namespace: str) -> str:
    # Never pulled: admission of the pod (it needs the default ServiceAccount) is what is tested.
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": namespace},
                       "spec": {"containers": [{"name": "c", "image": "registry.invalid/none:1"}]}})  # fmt: skip


def test_audit_namespace_is_ready_for_pods_and_its_setup_is_not_in_the_window(
    audited_cluster: AuditedCluster, audit_namespace: str, audit_log: AuditWindow
) -> None:
    assert audit_namespace.startswith("kat-test-audit-namespace-is-ready-for-pods")
    assert len(audit_namespace) <= 63
    # At once, no retry: a pod in a namespace without its default ServiceAccount is refused.
    audited_cluster.kubectl("create", "-f", "-", input=pod(audit_namespace))
    mounted = audited_cluster.kubectl("get", "configmap", "kube-root-ca.crt", "-n", audit_namespace, "-o", "name")
    assert mounted.strip() == "configmap/kube-root-ca.crt"

    scoped = audit_log.in_namespace()
    scoped.assert_audited(verb="create", resource="pods", name="web", code=201, count=1)
    # The setup happened (the session saw it) but is not the test's: not in its window.
    audited_cluster.audit.assert_audited(verb="create", resource="namespaces", name=audit_namespace, count=1)
    audited_cluster.audit.assert_audited(verb="get", resource="serviceaccounts", namespace=audit_namespace)
    audit_log.assert_not_audited(verb="create", resource="namespaces", name=audit_namespace, stage=None)
    scoped.assert_not_audited(resource="serviceaccounts/*", user=audited_cluster.identity, stage=None)
    scoped.assert_not_audited(resource="configmaps", verb="create", stage=None)
    assert {e.namespace for e in scoped.events(stage=None)} == {audit_namespace}


def test_a_script_gets_the_same_namespace_and_it_is_deleted_without_waiting(audited_cluster: AuditedCluster) -> None:
    window = audited_cluster.window(label="script")
    with fresh_namespace(audited_cluster, label="script", window=window) as namespace:
        audited_cluster.kubectl("create", "configmap", "cfg", "-n", namespace.name)
        assert len(window.in_namespace().events(verb="create")) == 1
        assert namespace.ready is not None
    # Deleted, not waited for: it is terminating or already gone, and the delete was the last request.
    phase = audited_cluster.kubectl("get", "namespace", namespace.name, "-o", "jsonpath={.status.phase}", check=False)
    assert phase in ("Terminating", "")
    audited_cluster.audit.assert_audited(verb="delete", resource="namespaces", name=namespace.name, count=1)
    window.assert_not_audited(verb="delete", resource="namespaces", name=namespace.name)
    (create,) = window.in_namespace(namespace.name).events(verb="create")
    assert (create.resource, create.name, create.code) == ("configmaps", "cfg", 201)


def test_a_small_real_trail_is_pinned(
    audited_cluster: AuditedCluster, audit_namespace: str, audit_log: AuditWindow, snapshot: Any
) -> None:
    k = audited_cluster.kubectl
    k("create", "configmap", "cfg", "-n", audit_namespace, "--from-literal=a=1")
    k("get", "configmap", "cfg", "-n", audit_namespace)
    k("patch", "configmap", "cfg", "-n", audit_namespace, "--type=merge", "-p", '{"data":{"a":"2"}}')
    k("delete", "configmap", "cfg", "-n", audit_namespace, "--wait=false")
    k("get", "configmap", "cfg", "-n", audit_namespace, check=False)  # 404
    trail = audit_log.trail()
    assert trail == snapshot
    # What the snapshot holds, spelled out: the namespace as its placeholder, discovery left out, patch's
    # own get and the first get one step.
    assert trail.lines() == [
        "create configmaps <namespace>/cfg 201",
        "get configmaps <namespace>/cfg 200",
        "patch configmaps <namespace>/cfg 200",
        "delete configmaps <namespace>/cfg 200",
        "get configmaps <namespace>/cfg 404",
        "get namespaces <namespace> 200",  # kubectl's own check after a NotFound: does the namespace exist?
    ]


# The README's two examples are tests of this module, run as written against the session's cluster; their
# snapshot is the one the README shows.
exec(compile(readme_block("## A namespace per test"), "README.md", "exec"))
exec(compile(readme_block("## Golden audit trails"), "README.md", "exec"))


def test_the_readmes_snapshot_is_the_stored_one() -> None:
    shown = README.read_text().split("`pytest --snapshot-update` writes", 1)[1].split("```\n", 2)[1]
    stored = (Path(__file__).parent / "__snapshots__" / "test_namespace_and_trail.ambr").read_text()
    assert shown in stored
