"""Every user-visible feature against the session's real audited cluster."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from pytest_kind_audit import (
    AuditedCluster,
    AuditPolicy,
    AuditWindow,
    KindConfig,
    assert_audited,
    assert_not_audited,
)
from pytest_kind_audit.evaluator import RequestAttributes

from .conftest import LEVEL_NAMESPACES

pytestmark = pytest.mark.e2e

ADMIN = "kubernetes-admin"


def pod_manifest(namespace: str, name: str, label: str = "a") -> str:
    # The image is never pulled: the pod object is what these tests audit.
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"v": label}},
        "spec": {"containers": [{"name": "c", "image": "registry.invalid/none:1"}]},
    })  # fmt: skip


def test_the_users_contract(audited_cluster: AuditedCluster) -> None:
    name = "demo-" + os.urandom(3).hex()
    audited_cluster.kubectl("create", "namespace", name)
    (event,) = assert_audited(verb="create", resource="namespaces", name=name)
    assert event.code == 201
    assert event.user.username == ADMIN
    assert "system:masters" in event.user.groups or "kubeadm:cluster-admins" in event.user.groups
    assert event.decision == "allow"
    assert event.user_agent.startswith("kubectl")
    assert event.request_received_timestamp is not None and event.request_received_timestamp.tzinfo is not None
    audited_cluster.kubectl("delete", "namespace", name, "--wait=false")


@pytest.mark.parametrize("kind", ["configmaps", "secrets"])
def test_create_get_list_update_patch_delete(audited_cluster: AuditedCluster, namespace: str, kind: str) -> None:
    k = audited_cluster.kubectl
    if kind == "configmaps":
        k("create", "configmap", "cfg", "-n", namespace, "--from-literal=a=1")
    else:
        k("create", "secret", "generic", "cfg", "-n", namespace, "--from-literal=a=1")
    obj = json.loads(k("get", kind, "cfg", "-n", namespace, "-o", "json"))
    k("get", kind, "-n", namespace)
    obj["metadata"]["labels"] = {"updated": "yes"}
    k("replace", "-f", "-", input=json.dumps(obj))
    k("patch", kind, "cfg", "-n", namespace, "--type=merge", "-p", '{"metadata":{"annotations":{"p":"1"}}}')
    k("delete", kind, "cfg", "-n", namespace)

    where = {"resource": kind, "namespace": namespace}
    assert_audited(verb="create", name="cfg", code=201, count=1, **where)
    assert_audited(verb="get", name="cfg", code=200, at_least=1, **where)  # kubectl delete reads too
    assert_audited(verb="list", code=200, count=1, **where)
    assert_audited(verb="update", name="cfg", code=200, count=1, **where)
    assert_audited(verb="patch", name="cfg", code=200, count=1, **where)
    assert_audited(verb="delete", name="cfg", code=200, count=1, **where)
    assert_not_audited(verb=["deletecollection", "watch"], **where)


def test_pods_lifecycle(audited_cluster: AuditedCluster, namespace: str) -> None:
    k = audited_cluster.kubectl
    k("create", "-f", "-", input=pod_manifest(namespace, "web"))
    k("get", "pod", "web", "-n", namespace)
    k("get", "pods", "-n", namespace)
    k("label", "pod", "web", "-n", namespace, "extra=1")
    for _ in range(10):  # the kubelet updates the pod's status meanwhile: a 409 Conflict means read again
        obj = json.loads(k("get", "pod", "web", "-n", namespace, "-o", "json"))
        obj["metadata"]["labels"]["v"] = "b"
        if "replaced" in k("replace", "-f", "-", input=json.dumps(obj), check=False):
            break
    k("delete", "pod", "web", "-n", namespace, "--wait=false")
    where = {"resource": "pods", "namespace": namespace, "user": ADMIN}
    assert_audited(verb="create", name="web", code=201, count=1, **where)
    assert_audited(verb="get", name="web", code=200, at_least=2, **where)
    assert_audited(verb="list", code=200, count=1, **where)
    assert_audited(verb="patch", name="web", code=200, count=1, **where)
    assert_audited(verb="update", name="web", code=200, count=1, **where)
    assert_audited(verb="delete", name="web", code=200, count=1, **where)


def test_namespaces_lifecycle(audited_cluster: AuditedCluster) -> None:
    k = audited_cluster.kubectl
    name = "life-" + os.urandom(3).hex()
    k("create", "namespace", name)
    obj = json.loads(k("get", "namespace", name, "-o", "json"))
    k("get", "namespaces")
    obj["metadata"]["labels"] = {"updated": "yes"}
    k("replace", "-f", "-", input=json.dumps(obj))
    k("label", "namespace", name, "patched=yes")
    k("delete", "namespace", name, "--wait=false")
    # A namespace's own requests carry it as their namespace too (/api/v1/namespaces/<name>).
    assert_audited(verb="create", resource="namespaces", name=name, namespace="", code=201, count=1)
    assert_audited(verb="get", resource="namespaces", name=name, namespace=name, code=200, at_least=1)
    assert_audited(verb="list", resource="namespaces", user=ADMIN, code=200, at_least=1)
    assert_audited(verb="update", resource="namespaces", name=name, code=200, count=1)
    assert_audited(verb="patch", resource="namespaces", name=name, code=200, count=1)
    assert_audited(verb="delete", resource="namespaces", name=name, code=200, count=1)


@pytest.mark.parametrize("kind", ["namespaces", "pods", "configmaps", "secrets"])
def test_watch_has_response_started_and_complete(audited_cluster: AuditedCluster, namespace: str, kind: str) -> None:
    scope = [] if kind == "namespaces" else ["-n", namespace]
    audited_cluster.kubectl("get", kind, *scope, "--watch", "--request-timeout=2s", check=False)
    where = {"verb": "watch", "resource": kind, "namespace": "" if kind == "namespaces" else namespace, "user": ADMIN}
    assert_audited(stage="ResponseStarted", count=1, **where)
    assert_audited(stage="RequestReceived", count=1, **where)
    assert_audited(count=1, **where)  # ResponseComplete, written once the watch ended


def test_forbidden_for_an_impersonated_user(audited_cluster: AuditedCluster, namespace: str) -> None:
    out = audited_cluster.kubectl("--as=nobody", "get", "secrets", "-n", namespace, check=False)
    assert out == ""
    (event,) = assert_audited(verb="list", resource="secrets", namespace=namespace,
                              impersonated_user="nobody", code=403, decision="forbid")  # fmt: skip
    assert event.user.username == ADMIN, "the authenticated user is the impersonator"
    assert event.effective_user.username == "nobody"
    assert event.response_status is not None and event.response_status.reason == "Forbidden"


def test_not_found(audited_cluster: AuditedCluster, namespace: str) -> None:
    audited_cluster.kubectl("get", "configmap", "missing", "-n", namespace, check=False)
    (event,) = assert_audited(verb="get", resource="configmaps", name="missing", code=404)
    assert event.response_status is not None and event.response_status.reason == "NotFound"


@pytest.mark.parametrize(
    ("level", "request_body", "response_body"),
    [("Metadata", False, False), ("Request", True, False), ("RequestResponse", True, True)],
)
def test_each_level_records_the_right_bodies(
    audited_cluster: AuditedCluster, level: str, request_body: bool, response_body: bool
) -> None:
    ns = LEVEL_NAMESPACES.get(level) or "lvl-" + os.urandom(3).hex()
    audited_cluster.kubectl("create", "namespace", ns, check=False)  # created once per session
    name = "c-" + os.urandom(3).hex()
    audited_cluster.kubectl("create", "configmap", name, "-n", ns, "--from-literal=k=v")
    (event,) = assert_audited(verb="create", resource="configmaps", namespace=ns, name=name)
    assert event.level == level
    assert (event.request_object is not None) is request_body
    assert (event.response_object is not None) is response_body
    if request_body:
        assert event.request_object["data"] == {"k": "v"}  # type: ignore[index]


def test_level_none_records_nothing(audited_cluster: AuditedCluster) -> None:
    ns, control = LEVEL_NAMESPACES["None"], LEVEL_NAMESPACES["Metadata"]
    for namespace in (ns, control):
        audited_cluster.kubectl("create", "namespace", namespace, check=False)
    audited_cluster.kubectl("create", "configmap", "quiet", "-n", ns, "--from-literal=k=v")
    audited_cluster.kubectl("get", "configmap", "quiet", "-n", ns)
    # Positive control, after the silent requests: once its event is in, the log is past them.
    audited_cluster.kubectl("get", "configmaps", "-n", control)
    assert_audited(verb="list", resource="configmaps", namespace=control, count=1)
    assert_not_audited(namespace=ns, stage=None)


def test_audit_log_is_this_tests_window_only(audited_cluster: AuditedCluster, audit_log: AuditWindow) -> None:
    # kube-system was created by the API server at start-up, long before this test.
    assert audited_cluster.audit.events(verb="create", resource="namespaces", name="kube-system")
    assert not audit_log.events(verb="create", resource="namespaces", name="kube-system")
    audited_cluster.kubectl("get", "namespace", "kube-system")
    assert audit_log.assert_audited(verb="get", resource="namespaces", name="kube-system", count=1)
    assert all(e.request_received_timestamp >= audit_log.start for e in audit_log.all())  # type: ignore[operator]


def test_session_stream_and_queries(audited_cluster: AuditedCluster, namespace: str) -> None:
    audited_cluster.kubectl("create", "configmap", "q", "-n", namespace)
    session = audited_cluster.audit
    assert session.assert_audited(verb="create", resource="configmaps", namespace=namespace, name="q", count=1)
    admin_creates = session.events(verb="create", user=ADMIN, namespace=re.compile("kat-.*"))
    assert any(e.name == "q" for e in admin_creates)
    # A callable filter picks exactly what it says; the tests' own requests got no server error. (Controllers
    # may meet a transient 5xx while they clean up the namespaces tests delete without waiting: not ours.)
    server_error = lambda c: c is not None and c >= 500  # noqa: E731
    assert session.events(code=server_error) == [e for e in session.events() if server_error(e.code)]
    assert session.events(code=server_error, user=ADMIN) == []
    client_error = session.events(code=lambda c: c is not None and 400 <= c < 500)
    assert client_error and all(400 <= e.code < 500 for e in client_error)  # type: ignore[operator]


def test_cluster_handle(audited_cluster: AuditedCluster, kind_config: KindConfig) -> None:
    assert re.fullmatch(r"v1\.\d+\.\d+", audited_cluster.kubernetes_version)
    image = os.environ.get("PYTEST_KIND_AUDIT_IMAGE", "")
    if image.startswith("kind-audit-ci/node:"):
        assert audited_cluster.kubernetes_version == image.split(":")[1].split("-")[0]  # tags: v1.34.4-2
    kubeconfig = Path(audited_cluster.kubeconfig)
    assert kubeconfig.is_file() and audited_cluster.name in kubeconfig.read_text()
    default = Path.home() / ".kube" / "config"
    assert not default.exists() or audited_cluster.name not in default.read_text(), "~/.kube/config was touched"
    audited_cluster.wait_for_nodes(timeout=120)  # workers may still be registering (no --wait)
    nodes = audited_cluster.kubectl("get", "nodes", "-o", "name").split()
    workers = [f"node/{audited_cluster.name}-worker{i if i > 1 else ''}" for i in range(1, kind_config.workers + 1)]
    assert nodes == [f"node/{audited_cluster.name}-control-plane", *workers]


def test_the_policy_evaluator_predicts_every_real_events_level(
    audited_cluster: AuditedCluster, audit_policy: AuditPolicy, namespace: str
) -> None:
    k = audited_cluster.kubectl
    for ns in LEVEL_NAMESPACES.values():
        k("create", "namespace", ns, check=False)
    # A varied set: every level's namespace, subresources, cluster-scoped, non-resource, 403s, 404s.
    for ns in [namespace, *LEVEL_NAMESPACES.values()]:
        k("create", "configmap", "ev-" + os.urandom(2).hex(), "-n", ns)
        k("get", "configmaps", "-n", ns)
    k("get", "--raw", "/version")
    k("get", "--raw", "/healthz", check=False)
    k("get", "clusterroles", "admin")
    k("--as=nobody", "get", "pods", "-n", namespace, check=False)
    k("get", "pod", "missing", "-n", namespace, check=False)
    k("auth", "can-i", "list", "secrets")
    events = audited_cluster.audit.all()
    assert len(events) > 500
    wrong = [e for e in events if audit_policy.decide(RequestAttributes.from_event(e)).level != e.level]
    assert not wrong, "\n".join(f"{e.summary()} logged at {e.level}, predicted "
                                f"{audit_policy.decide(RequestAttributes.from_event(e)).describe()}" for e in wrong[:10])  # fmt: skip
    # And what it predicts at None never reaches the log.
    assert audit_policy.level_for(verb="get", user="kubernetes-admin", resource="configmaps",
                                  namespace=LEVEL_NAMESPACES["None"]).level == "None"  # fmt: skip
    assert not audited_cluster.audit.events(namespace=LEVEL_NAMESPACES["None"], stage=None)


def test_kubectl_inside_the_node_when_this_host_has_none(
    audited_cluster: AuditedCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audited_cluster, "_kubectl", None)
    name = "in-node-" + os.urandom(3).hex()
    audited_cluster.kubectl("create", "namespace", name)
    (event,) = assert_audited(verb="create", resource="namespaces", name=name)
    assert event.user.username == audited_cluster.identity
    audited_cluster.kubectl("delete", "namespace", name, "--wait=false")


def test_the_readmes_core_snippet_runs_as_written() -> None:
    from tests.unit.test_readme import readme_block

    code = readme_block("## Using the core without pytest")
    image = os.environ.get("PYTEST_KIND_AUDIT_IMAGE") or "kind-audit-ci/node:v1.34.4-3"
    kind = os.environ.get("PYTEST_KIND_AUDIT_KIND_BINARY") or "kind"  # CI's second line: another kind
    code = code.replace("kind-audit-ci/node:v1.34.4-3", image).replace(
        'check_environment("kind", ', f"check_environment({kind!r}, "
    )
    unique = "demo-" + os.urandom(3).hex()  # never a name a user of this machine might have
    code = code.replace('create(name="demo"', f"create(name={unique!r}").replace(
        'Path("/tmp/demo")', f"Path('/tmp/{unique}')"
    )
    exec(compile(code, "README.md", "exec"), {})


WILDCARD_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  resources: [{group: "*", resources: [configmaps]}]
- level: Metadata
"""

WILDCARD_SUITE = """
from pytest_kind_audit import assert_audited, assert_not_audited

def test_wildcard(audited_cluster):
    audited_cluster.kubectl("create", "namespace", "wild")
    audited_cluster.kubectl("create", "configmap", "quiet", "-n", "wild")
    assert_audited(verb="create", resource="namespaces", name="wild")
    assert_not_audited(verb="create", resource="configmaps", namespace="wild", timeout=2)
    # The plugin's evaluator agrees with the API server.
    assert audited_cluster.audit.policy.level_for(verb="create", user="u", resource="configmaps",
                                                  api_group="").level == "None"
"""


def test_group_wildcard_follows_the_kubernetes_version(
    pytester: pytest.Pytester, audited_cluster: AuditedCluster, state_dir: object
) -> None:
    """`group: "*"` in a policy: refused before any cluster up to Kubernetes 1.35 (the API server would
    crash-loop), a wildcard from 1.36 on. Checked on whichever line this run uses."""
    from .helpers import delete_cluster, node_containers

    minor = int(audited_cluster.kubernetes_version.split(".")[1])
    policy = pytester.path / "wildcard.yaml"
    policy.write_text(WILDCARD_POLICY)
    pytester.makepyfile(test_wild=WILDCARD_SUITE)
    name = "wild-" + os.urandom(3).hex()
    try:
        result = pytester.runpytest_subprocess(f"--kind-audit-policy={policy}", f"--kind-audit-cluster-name={name}",
                                               "-p", "no:cacheprovider", timeout=900)  # fmt: skip
        if minor < 36:
            result.assert_outcomes(errors=1)
            result.stdout.fnmatch_lines(
                ["*group '[*]' matches every API group only from Kubernetes 1.36; v1.3* refuses it*"]
            )
            assert "kind-audit: cluster" not in result.stdout.str()
        else:
            result.assert_outcomes(passed=1)
    finally:
        delete_cluster(name)
    assert node_containers(name) == []
