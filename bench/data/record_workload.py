"""The workload behind bench/data/kind-v1-<level>.jsonl.gz: one short session on a real kind cluster.

Record one level (the plugin saves the session's whole audit log as <dir>/<cluster>-audit.log):

    PATH=$PWD/bin:$PATH PYTEST_KIND_AUDIT_IMAGE=kind-audit-ci/node:v1.34.4 python -m pytest -p no:cacheprovider \
        bench/data/record_workload.py --kind-audit-level=Metadata --kind-audit-log-dir=/tmp/kind-audit-rec/Metadata

then trim and redact it with bench/data/compact.py. Every Secret value here is a throwaway made on the spot.
"""

from __future__ import annotations

import json
import secrets
import time

import pytest

from pytest_kind_audit import AuditedCluster

NAMESPACES = ("bench-a", "bench-b", "bench-c")


def pod_manifest(namespace: str, name: str, image: str) -> str:
    return json.dumps({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "c", "image": image, "imagePullPolicy": "Never"}]},
    })  # fmt: skip


def deployment_manifest(namespace: str, image: str) -> str:
    labels = {"app": "bench-deploy"}
    return json.dumps({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": image, "imagePullPolicy": "Never"}]},
            },
        },
    })  # fmt: skip


@pytest.fixture(scope="module")
def pause_image(audited_cluster: AuditedCluster) -> str:
    """The sandbox image preloaded in the node: pods run without any registry."""
    images = json.loads(audited_cluster.exec_in_node("crictl", "images", "-o", "json"))["images"]
    tags = [tag for image in images for tag in image.get("repoTags") or () if "/pause:" in tag]
    assert tags, "no pause image in the node"
    return str(tags[0])


def wait_for(audited_cluster: AuditedCluster, *args: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while audited_cluster.kubectl(*args, check=False) == "":
        assert time.monotonic() < deadline, f"timed out: kubectl {' '.join(args)}"
        time.sleep(0.5)


def test_namespaces(audited_cluster: AuditedCluster) -> None:
    for ns in NAMESPACES:
        audited_cluster.kubectl("create", "namespace", ns)
    for ns in NAMESPACES:
        wait_for(audited_cluster, "get", "serviceaccount", "default", "-n", ns)
    audited_cluster.kubectl("get", "namespaces")


def test_configmaps(audited_cluster: AuditedCluster) -> None:
    for ns in NAMESPACES:
        for i in range(3):
            audited_cluster.kubectl("create", "configmap", f"settings-{i}", "-n", ns,
                                    f"--from-literal=mode=strict-{i}", "--from-literal=retries=3")  # fmt: skip
        audited_cluster.kubectl("get", "configmaps", "-n", ns)
        audited_cluster.kubectl("get", "configmap", "settings-0", "-n", ns, "-o", "yaml")
        audited_cluster.kubectl("patch", "configmap", "settings-1", "-n", ns, "--type=merge",
                                "-p", '{"data": {"mode": "lenient"}}')  # fmt: skip
        audited_cluster.kubectl("label", "configmap", "settings-2", "-n", ns, "tier=bench")
        audited_cluster.kubectl("delete", "configmap", "settings-2", "-n", ns)
    audited_cluster.kubectl("get", "configmaps", "--all-namespaces")


def test_secrets(audited_cluster: AuditedCluster) -> None:
    for ns in NAMESPACES:
        for i in range(2):
            # Throwaway values, made here and never used anywhere else.
            audited_cluster.kubectl("create", "secret", "generic", f"token-{i}", "-n", ns,
                                    f"--from-literal=password=throwaway-{secrets.token_hex(8)}")  # fmt: skip
        audited_cluster.kubectl("get", "secrets", "-n", ns)
        audited_cluster.kubectl("get", "secret", "token-0", "-n", ns, "-o", "json")
        audited_cluster.kubectl("patch", "secret", "token-1", "-n", ns, "--type=merge",
                                "-p", '{"stringData": {"user": "throwaway-user"}}')  # fmt: skip
        audited_cluster.kubectl("delete", "secret", "token-1", "-n", ns)


def test_pods(audited_cluster: AuditedCluster, pause_image: str) -> None:
    for ns in NAMESPACES:
        audited_cluster.kubectl("apply", "-f", "-", input=pod_manifest(ns, "worker", pause_image))
    audited_cluster.kubectl("apply", "-f", "-", input=deployment_manifest(NAMESPACES[0], pause_image))
    for ns in NAMESPACES:
        audited_cluster.kubectl("wait", "--for=condition=Ready", "pod/worker", "-n", ns, "--timeout=120s")
        audited_cluster.kubectl("get", "pods", "-n", ns, "-o", "wide")
        audited_cluster.kubectl("label", "pod", "worker", "-n", ns, "checked=yes")
        audited_cluster.kubectl("get", "pod", "worker", "-n", ns, "-o", "json")
    audited_cluster.kubectl("rollout", "status", "deployment/web", "-n", NAMESPACES[0], "--timeout=120s")
    audited_cluster.kubectl("scale", "deployment/web", "-n", NAMESPACES[0], "--replicas=1")
    audited_cluster.kubectl("get", "pods", "--all-namespaces")
    for ns in NAMESPACES[1:]:
        audited_cluster.kubectl("delete", "pod", "worker", "-n", ns, "--grace-period=1")


def test_background_then_cleanup(audited_cluster: AuditedCluster) -> None:
    time.sleep(15)  # the controllers' and kubelet's own traffic
    for ns in NAMESPACES:
        audited_cluster.kubectl("delete", "namespace", ns, "--wait=false")
    for ns in NAMESPACES:
        audited_cluster.kubectl("wait", "--for=delete", f"namespace/{ns}", "--timeout=120s", check=False)
