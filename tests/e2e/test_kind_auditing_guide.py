"""kind's "Auditing" guide, replayed by hand (no plugin code) against the node image CI builds.

This is the recipe the plugin automates; if it breaks, the plugin cannot work either. The guide writes
``extraArgs`` as a map, the kubeadm v1beta3 form; for Kubernetes 1.36+ (kubeadm v1beta4, written by
kind v0.32+) the same patch takes v1beta4's list of ``name``/``value`` pairs, so the form is picked by
the node image's Kubernetes version (its ``/kind/version``).
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: Metadata
"""

KIND_CONFIG = """\
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
  kubeadmConfigPatches:
  - |
    kind: ClusterConfiguration
    apiServer:
        # enable auditing flags on the API server
        extraArgs:
{extra_args}
        # mount new files / directories on the control plane
        extraVolumes:
          - name: audit-policies
            hostPath: /etc/kubernetes/policies
            mountPath: /etc/kubernetes/policies
            readOnly: true
            pathType: "DirectoryOrCreate"
          - name: "audit-logs"
            hostPath: "/var/log/kubernetes"
            mountPath: "/var/log/kubernetes"
            readOnly: false
            pathType: DirectoryOrCreate
  # mount the local file on the control plane
  extraMounts:
  - hostPath: {policy}
    containerPath: /etc/kubernetes/policies/audit-policy.yaml
    readOnly: true
"""


# extraArgs in kubeadm v1beta3 (a map) and v1beta4 (a list of name/value pairs).
EXTRA_ARGS_V1BETA3 = """\
          audit-log-path: /var/log/kubernetes/kube-apiserver-audit.log
          audit-policy-file: /etc/kubernetes/policies/audit-policy.yaml"""
EXTRA_ARGS_V1BETA4 = """\
          - name: audit-log-path
            value: /var/log/kubernetes/kube-apiserver-audit.log
          - name: audit-policy-file
            value: /etc/kubernetes/policies/audit-policy.yaml"""


def kind_config(policy: Path, kubernetes_version: tuple[int, int] | None) -> str:
    """The guide's config, its extraArgs in the form kind writes for this Kubernetes version (the guide's
    own map form when the version is unknown: kind v0.32+ converts an unversioned patch's map)."""
    v1beta4 = kubernetes_version is not None and kubernetes_version >= (1, 36)
    return KIND_CONFIG.format(policy=policy, extra_args=EXTRA_ARGS_V1BETA4 if v1beta4 else EXTRA_ARGS_V1BETA3)


def image_kubernetes_version(node_image: str) -> tuple[int, int] | None:
    """The Kubernetes version in the image's /kind/version, where kind reads it; None for kind's default
    image, which is not here before kind pulls it."""
    if not node_image:
        return None
    text = run("docker", "run", "--rm", "--entrypoint", "cat", node_image, "/kind/version")
    m = re.match(r"v(\d+)\.(\d+)\.", text.strip())
    assert m, f"{node_image}: /kind/version says {text!r}"
    return int(m[1]), int(m[2])


def run(*argv: str, input: str | None = None) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, input=input, timeout=600, check=False)
    assert proc.returncode == 0, f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_kind_auditing_guide_end_to_end(tmp_path: Path, kind_binary: str, node_image: str) -> None:
    name = "guide-" + secrets.token_hex(3)
    node = f"{name}-control-plane"
    policy = tmp_path / "audit-policy.yaml"
    policy.write_text(POLICY)
    config = tmp_path / "kind-config.yaml"
    config.write_text(kind_config(policy, image_kubernetes_version(node_image)))
    kubeconfig = tmp_path / "kubeconfig"
    argv = [kind_binary, "create", "cluster", "--name", name, "--config", str(config),
            "--kubeconfig", str(kubeconfig), "--wait", "180s"]  # fmt: skip
    if node_image:
        argv += ["--image", node_image]
    try:
        run(*argv)

        # Check 1: the log exists and holds audit.k8s.io/v1 Event lines.
        log = run("docker", "exec", node, "cat", "/var/log/kubernetes/kube-apiserver-audit.log")
        events = [json.loads(line) for line in log.splitlines() if line.strip()]
        assert events, "the audit log is empty"
        assert {(e["apiVersion"], e["kind"]) for e in events} == {("audit.k8s.io/v1", "Event")}

        # Check 2: the policy is mounted where the API server reads it.
        assert "audit-policy.yaml" in run("docker", "exec", node, "ls", "/etc/kubernetes/policies").split()

        # Check 3: the static pod manifest carries both flags and both volumes.
        manifest = run("docker", "exec", node, "cat", "/etc/kubernetes/manifests/kube-apiserver.yaml")
        for needle in ("--audit-log-path=/var/log/kubernetes/kube-apiserver-audit.log",
                       "--audit-policy-file=/etc/kubernetes/policies/audit-policy.yaml",
                       "name: audit-policies", "name: audit-logs"):  # fmt: skip
            assert needle in manifest, (
                f"{needle!r} missing from kube-apiserver.yaml:\n{textwrap.indent(manifest, '  ')}"
            )

        # A request of our own, and exactly its create event.
        namespace = "guide-" + secrets.token_hex(4)
        run(
            "docker",
            "exec",
            node,
            "kubectl",
            "--kubeconfig=/etc/kubernetes/admin.conf",
            "create",
            "namespace",
            namespace,
        )
        log = run("docker", "exec", node, "cat", "/var/log/kubernetes/kube-apiserver-audit.log")
        creates = [
            e for e in map(json.loads, filter(str.strip, log.splitlines()))
            if e["verb"] == "create" and e["stage"] == "ResponseComplete"
            and e.get("objectRef", {}).get("resource") == "namespaces"
            and e.get("objectRef", {}).get("name") == namespace
        ]  # fmt: skip
        assert len(creates) == 1, f"expected one create event for namespace {namespace}, found {len(creates)}"
        assert creates[0]["responseStatus"]["code"] == 201
        assert creates[0]["level"] == "Metadata"
        assert "requestObject" not in creates[0]
    finally:
        subprocess.run([kind_binary, "delete", "cluster", "--name", name, "--kubeconfig", str(kubeconfig)],
                       capture_output=True, timeout=300, check=False)  # fmt: skip
        gone = subprocess.run(["docker", "ps", "-aq", "--filter", f"name=^{node}$"],
                              capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip
        assert not gone, f"cluster {name} was not deleted"
