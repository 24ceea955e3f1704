"""A workload inside the session's cluster: the client-go program of tests/e2e/workload, in the image
ci/build-workload-image.sh builds on this host, loaded with kind and run as a Job under its own
ServiceAccount. It reaches the API server by https://kubernetes.default.svc (CoreDNS and kube-proxy of the
node image), and its requests are audited under its user and user agent."""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from tests.unit.test_readme import readme_block

from pytest_kind_audit import AuditedCluster, ImageLoadError, assert_audited, assert_not_audited
from pytest_kind_audit.environment import Environment
from pytest_kind_audit.images import absent_message, load_image
from pytest_kind_audit.log import AuditWindow
from pytest_kind_audit.options import Settings

pytestmark = pytest.mark.e2e

AGENT = "kind-audit-workload/1"
CONFIGMAP = "kind-audit-workload"  # the name the program creates
ROLE = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "workload"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list", "create", "get"]}]}  # fmt: skip


def _pinned(name: str) -> str:
    """A pin of ci/versions.env (the image's tag is set there, for the build script and these tests)."""
    for line in (Path(__file__).parents[2] / "ci" / "versions.env").read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1].strip()
    raise LookupError(f"{name} is not in ci/versions.env")


WORKLOAD_IMAGE = _pinned("WORKLOAD_IMAGE")
SOURCES = Path(__file__).parent / "workload"
LABEL = "io.kind-audit.source"


def _source_hash() -> str:
    """What ci/build-workload-image.sh stamps the image with: sha256 of go.mod, go.sum and main.go, 12 digits."""
    sources = b"".join((SOURCES / name).read_bytes() for name in ("go.mod", "go.sum", "main.go"))
    return hashlib.sha256(sources).hexdigest()[:12]


@pytest.fixture(scope="module")
def workload_image(kind_audit_environment: Environment, kind_audit_settings: Settings) -> str:
    """The workload image, built from the current sources: absent, the tests skip (fail with
    --kind-audit-require); built from other sources (the tag is fixed), they fail. Checked once Docker is."""
    fix = "run ci/build-workload-image.sh"
    inspect = ["docker", "image", "inspect", "-f", "{{json .Config.Labels}}", WORKLOAD_IMAGE]
    found = subprocess.run(inspect, capture_output=True, text=True, check=False)
    if found.returncode != 0:
        if kind_audit_settings.require:
            pytest.fail(f"{WORKLOAD_IMAGE} is not on this host: {fix}", pytrace=False)
        pytest.skip(f"{WORKLOAD_IMAGE} is not on this host: {fix}")
    label, want = (json.loads(found.stdout) or {}).get(LABEL), _source_hash()
    if label != want:
        pytest.fail(f"{WORKLOAD_IMAGE} is stale: its {LABEL} label is {label or 'missing'}, tests/e2e/workload "
                    f"hashes to {want}: {fix} to rebuild it", pytrace=False)  # fmt: skip
    return WORKLOAD_IMAGE


def _run_job(cluster: AuditedCluster, namespace: str, image: str, account: str, timeout: float = 180) -> str:
    """Run the image as a Job's one pod under ``account``; its log once it succeeded (its log and status in the
    failure otherwise)."""
    pod = {"serviceAccountName": account, "restartPolicy": "Never",
           "containers": [{"name": "workload", "image": image, "imagePullPolicy": "Never"}]}  # fmt: skip
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "workload"},
           "spec": {"backoffLimit": 0, "template": {"spec": pod}}}  # fmt: skip
    # The program resolves kubernetes.default.svc first: cluster DNS must be up (the cluster is handed out before).
    cluster.kubectl("wait", "-n", "kube-system", "deployment/coredns", "--for=condition=Available",
                    f"--timeout={timeout:.0f}s")  # fmt: skip
    cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(job))
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = cluster.kubectl_json("get", "job", "workload", "-n", namespace).get("status", {})
        if status.get("succeeded") or status.get("failed"):
            break
        time.sleep(0.5)
    log = cluster.kubectl("logs", "-n", namespace, "job/workload", check=False)
    pods = cluster.kubectl("get", "pods", "-n", namespace, "-o", "wide", check=False)
    assert status.get("succeeded"), f"the Job did not succeed: {status}\n{pods}\nits log:\n{log}"
    return log


def test_a_job_is_audited_as_its_service_account_and_user_agent(
    audited_cluster: AuditedCluster, audit_namespace: str, audit_log: AuditWindow, workload_image: str
) -> None:
    started = datetime.now(timezone.utc)
    image = audited_cluster.load_image(workload_image)
    loaded = datetime.now(timezone.utc)
    assert image == workload_image
    sa = audited_cluster.service_account("workload", namespace=audit_namespace)
    sa.bind(ROLE)
    log = _run_job(audited_cluster, audit_namespace, image, "workload")

    # The program resolved the Service's name with the cluster's DNS and used it as its server.
    assert "server https://kubernetes.default.svc (kubernetes.default.svc resolves to " in log, log
    assert f"created configmap {audit_namespace}/{CONFIGMAP}" in log, log

    its = {"user": sa.user, "user_agent": AGENT, "namespace": audit_namespace}
    listed = assert_audited(**its, verb="list", resource="configmaps", count=1)
    created = assert_audited(**its, verb="create", resource="configmaps", name=CONFIGMAP, count=1)
    assert_audited(**its, verb="get", resource="configmaps", name=CONFIGMAP, count=1)
    assert sa.user == f"system:serviceaccount:{audit_namespace}:workload"
    assert_not_audited(user=sa.user, verb=["update", "patch", "delete", "watch"])
    assert_not_audited(user=sa.user, resource="secrets")
    assert_not_audited(user=sa.user, user_agent=lambda agent: agent != AGENT)  # every request its own
    assert created[0].code == 201
    assert listed[0].received_at and created[0].received_at and listed[0].received_at < created[0].received_at

    # Where the request came from: the pod's IP, or a node's where the pod network masquerades it.
    pod = audited_cluster.kubectl_json("get", "pods", "-n", audit_namespace, "-l", "job-name=workload")["items"][0]
    nodes = audited_cluster.kubectl_json("get", "nodes")["items"]
    node_ips = {a["address"]: n["metadata"]["name"] for n in nodes for a in n["status"]["addresses"]
                if a["type"] == "InternalIP"}  # fmt: skip
    source = created[0].source_ips[0]
    assert source == pod["status"]["podIP"] or source in node_ips, (source, pod["status"], node_ips)

    first = min(e.received_at for e in audit_log.events(user=sa.user) if e.received_at)
    print(
        f"\nworkload: load_image {(loaded - started).total_seconds():.1f}s; the Job's first audited request "
        f"{(first - started).total_seconds():.1f}s after the test's start; pod {pod['status']['podIP']} on "
        f"{pod['spec']['nodeName']}, sourceIPs {list(created[0].source_ips)} ({node_ips.get(source, 'the pod')})"
    )


def test_an_absent_image_is_one_line_and_kind_never_runs(
    audited_cluster: AuditedCluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    absent = f"kind-audit-ci/absent:{secrets.token_hex(4)}"
    with pytest.raises(ImageLoadError) as info:
        audited_cluster.load_image(absent)
    assert str(info.value) == absent_message(absent)
    assert "\n" not in str(info.value) and "build or pull it on this host first" in str(info.value)
    # Without any kind at all the answer is the same: the check comes before kind would be started.
    monkeypatch.setattr(audited_cluster, "kind_binary", str(tmp_path / "no-kind-here"))
    with pytest.raises(ImageLoadError, match="is not on this host"):
        audited_cluster.load_image(absent)
    # Nor did anything reach the nodes.
    listing = audited_cluster.exec_in_node("ctr", "--namespace=k8s.io", "images", "list", "-q")
    assert "kind-audit-ci/absent" not in listing


def test_a_failed_kind_load_is_one_line_with_kinds_error(audited_cluster: AuditedCluster, workload_image: str) -> None:
    gone = f"kind-audit-gone-{secrets.token_hex(3)}"  # no such cluster: kind itself fails
    with pytest.raises(ImageLoadError) as info:
        load_image(audited_cluster.kind_binary, gone, workload_image)
    assert str(info.value) == (
        f"kind load docker-image {workload_image} into cluster {gone!r} failed: "
        f'ERROR: no nodes found for cluster "{gone}"'
    )


# The README's example is a test of this module, run as written against the session's cluster, after the
# image's check as the tests above.
README: dict[str, Any] = {"__name__": __name__}
exec(compile(readme_block("## Workloads inside the cluster"), "README.md", "exec"), README)
test_the_workload_writes_one_configmap = pytest.mark.usefixtures("workload_image")(
    README["test_the_workload_writes_one_configmap"]
)
