"""The README's example suite: run it with `pytest examples/ --kind-audit-level=RequestResponse`."""

from __future__ import annotations

from pytest_kind_audit import assert_audited, assert_not_audited


def test_creates_namespace(audited_cluster):
    audited_cluster.kubectl("create", "namespace", "demo")
    assert_audited(verb="create", resource="namespaces", name="demo")


def test_reads_no_secrets(audited_cluster):
    audited_cluster.kubectl("get", "configmaps", "-n", "default")
    assert_audited(verb="list", resource="configmaps", namespace="default", code=200)
    assert_not_audited(resource="secrets", verb=["get", "list", "watch"])


def test_request_bodies_at_request_response(audited_cluster, audit_log):
    audited_cluster.kubectl("create", "configmap", "settings", "-n", "default", "--from-literal=mode=strict")
    (event,) = audit_log.assert_audited(verb="create", resource="configmaps", name="settings", count=1)
    assert event.request_object["data"] == {"mode": "strict"}
    if event.level == "RequestResponse":
        assert event.response_object["metadata"]["name"] == "settings"
