"""Clusters with worker nodes: kind configs the plugin cannot audit are refused before any cluster exists,
in one line; and, when the session's cluster has workers (run with
``--kind-audit-kind-config=tests/e2e/kind-workers.yaml``, as CI's second line does), every node becomes Ready, the
audit log is the control plane's alone, and a pod on a worker runs, its kubelet's requests audited."""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_kind_audit import AuditedCluster, ClusterError, assert_audited
from pytest_kind_audit.cluster import not_ready
from pytest_kind_audit.kindconfig import AUDIT_LOG_PATH
from pytest_kind_audit.nodes import cluster_containers, docker_client, name_of
from pytest_kind_audit.ownership import made_by

from .helpers import delete_cluster, node_containers

pytestmark = pytest.mark.e2e

ADMIN = "kubernetes-admin"
USES_CLUSTER = "def test_x(audited_cluster):\n    pass\n"


# --- refused before any cluster exists ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nodes", "said"),
    [
        (["control-plane", "worker", "master"],
         "the kind config's node 3 has role 'master'; kind knows control-plane and worker"),
        (["control-plane", "control-plane", "worker"],
         "the kind config has 2 control-plane nodes; pytest-kind-audit needs exactly one: it reads one API "
         "server's audit log (and kind's load balancer in front of several comes from a registry, so the offline "
         "toolchain cannot build it); add worker nodes instead"),
    ],
)  # fmt: skip
@pytest.mark.usefixtures("state_dir")
def test_a_kind_config_kind_cannot_audit_is_a_usage_error_at_startup(
    pytester: pytest.Pytester, nodes: list[str], said: str
) -> None:
    name = "cfg-" + secrets.token_hex(3)
    config = pytester.path / "kind.yaml"
    config.write_text("nodes:\n" + "".join(f"- role: {role}\n" for role in nodes))
    pytester.makepyfile(USES_CLUSTER)
    result = pytester.runpytest_subprocess(f"--kind-audit-kind-config={config}", f"--kind-audit-cluster-name={name}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.errlines if line.strip()] == [f"ERROR: --kind-audit-kind-config: {said}"]
    assert node_containers(name) == []


@pytest.fixture
def image_without_cni(tmp_path: Path, node_image: str) -> Iterator[str]:
    """The run's node image with the placeholder default CNI manifest of the old offline images (a ConfigMap,
    no DaemonSet): enough for one node, no pod network for workers. Built offline, removed afterwards."""
    tag = f"kind-audit-test/no-cni:{secrets.token_hex(3)}"
    (tmp_path / "default-cni.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: no-cni\n")
    (tmp_path / "Dockerfile").write_text(
        f"FROM {node_image or 'kind-audit-ci/node:v1.34.4-3'}\nCOPY default-cni.yaml /kind/manifests/default-cni.yaml\n"
    )
    subprocess.run(["docker", "build", "-q", "-t", tag, str(tmp_path)], check=True, capture_output=True)
    yield tag
    subprocess.run(["docker", "rmi", "-f", tag], check=True, capture_output=True)


@pytest.mark.usefixtures("state_dir")
def test_workers_on_an_image_without_a_pod_network_are_one_line_and_no_cluster(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, image_without_cni: str
) -> None:
    name = "cni-" + secrets.token_hex(3)
    config = pytester.path / "kind.yaml"
    config.write_text("nodes:\n- role: control-plane\n- role: worker\n")
    monkeypatch.setenv("PYTEST_KIND_AUDIT_IMAGE", image_without_cni)
    pytester.makepyfile(USES_CLUSTER)
    try:
        result = pytester.runpytest_subprocess(
            f"--kind-audit-kind-config={config}", f"--kind-audit-cluster-name={name}", "-p", "no:cacheprovider"
        )
        result.assert_outcomes(errors=1)
        lines = result.outlines
        start = next(i for i, line in enumerate(lines) if "ERROR at setup of test_x" in line) + 1
        assert lines[start:start + 2] == [
            f"kind-audit: the kind config has worker nodes, but node image {image_without_cni} has no pod network "
            "for them: its /kind/manifests/default-cni.yaml holds no DaemonSet, only ConfigMap; use an image whose "
            "default CNI is a DaemonSet (kind's kindnetd, or flannel as in pytest-kind-audit's offline images), or set "
            "networking.disableDefaultCNI: true and install your own CNI",
            next(line for line in lines if "short test summary info" in line),
        ]  # fmt: skip
        assert node_containers(name) == []
    finally:
        if node_containers(name):
            delete_cluster(name)


# --- the session's cluster, when it has workers ------------------------------------------------------------


@pytest.fixture(scope="module")
def workers(audited_cluster: AuditedCluster) -> list[str]:
    # Creation does not wait for the workers to register or be Ready (kind's default): these tests do.
    audited_cluster.wait_for_nodes(timeout=120)
    out = audited_cluster.kubectl("get", "nodes", "-l", "!node-role.kubernetes.io/control-plane", "-o", "name")
    names = [n.removeprefix("node/") for n in out.split()]
    if not names:
        pytest.skip(
            "the session's cluster has no worker nodes: run with --kind-audit-kind-config=tests/e2e/kind-workers.yaml"
        )
    return names


def in_node(node: str, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "exec", node, "sh", "-c", script], capture_output=True, text=True, check=False)


def test_every_node_joins_and_becomes_ready(audited_cluster: AuditedCluster, workers: list[str]) -> None:
    # The fixture waited (wait_for_nodes counts every node container of the cluster): all are Ready now.
    assert not_ready(audited_cluster.kubectl_json("get", "nodes"), 1 + len(workers)) == {}
    # Waiting for a node that never comes ends in one line saying what is missing.
    with pytest.raises(ClusterError) as info:
        audited_cluster.wait_for_nodes(2 + len(workers), timeout=1)
    assert str(info.value) == (
        f"the nodes of {audited_cluster.name!r} were not all Ready within 1s: not registered: "
        f"1 of {2 + len(workers)} nodes"
    )


def test_the_audit_log_is_the_control_planes_alone(audited_cluster: AuditedCluster, workers: list[str]) -> None:
    # END only when docker exec and crictl both worked: a node that answered nothing fails, never passes.
    apiserver = f"crictl ps -a -q --name kube-apiserver && {{ test -e {AUDIT_LOG_PATH} && echo LOG; echo END; }}"
    done = in_node(audited_cluster.node, apiserver)
    control_plane = done.stdout.split()
    assert done.returncode == 0 and len(control_plane) >= 3 and control_plane[-2:] == ["LOG", "END"], done
    for worker in workers:
        done = in_node(worker, apiserver)
        assert done.returncode == 0 and done.stdout.split() == ["END"], (worker, done)


def test_every_node_is_the_runs_own_so_deletion_takes_the_workers_too(
    audited_cluster: AuditedCluster, kind_audit_workdir: Path, workers: list[str]
) -> None:
    # The deletion of a finished or half-made cluster removes the nodes made with a bind mount from the run's
    # directory, and leaves any other alone: a worker without it would outlive the run.
    if not audited_cluster.created:
        pytest.skip("this process attached to the cluster: another run or process made its nodes")
    nodes = {
        name_of(c): made_by(c, kind_audit_workdir) for c in cluster_containers(docker_client(), audited_cluster.name)
    }
    assert nodes == {audited_cluster.node: True, **dict.fromkeys(workers, True)}


def test_a_pod_on_a_worker_runs_and_its_kubelet_is_audited(
    audited_cluster: AuditedCluster, namespace: str, workers: list[str]
) -> None:
    worker = workers[-1]
    # A preloaded image, never pulled: kubeadm's pause, as the worker's containerd lists it.
    images = json.loads(in_node(worker, "crictl images -o json").stdout)["images"]
    pause = next(tag for image in images for tag in image.get("repoTags") or [] if "/pause:" in tag)
    name = "on-" + worker.rsplit("-", 1)[-1]
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
        "spec": {"nodeSelector": {"kubernetes.io/hostname": worker},
                 "containers": [{"name": "c", "image": pause, "imagePullPolicy": "Never"}]},
    }  # fmt: skip
    audited_cluster.kubectl("create", "-f", "-", input=json.dumps(pod))
    audited_cluster.kubectl("wait", "-n", namespace, f"pod/{name}", "--for=jsonpath={.status.phase}=Running",
                            "--timeout=120s")  # fmt: skip
    assert audited_cluster.kubectl("get", "-n", namespace, f"pod/{name}", "-o", "jsonpath={.spec.nodeName}") == worker
    assert_audited(verb="create", resource="pods", namespace=namespace, name=name, user=ADMIN, code=201, count=1)
    assert_audited(verb="create", resource="pods/binding", namespace=namespace, name=name,
                   user="system:kube-scheduler", code=201)  # fmt: skip
    running = assert_audited(verb="patch", resource="pods/status", namespace=namespace, name=name,
                             user=f"system:node:{worker}", code=200, at_least=1)  # fmt: skip
    assert all("system:nodes" in event.user.groups for event in running)
