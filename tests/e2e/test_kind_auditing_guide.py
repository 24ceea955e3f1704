"""kind's "Auditing" guide, replayed by hand (no plugin code) against the node image CI builds.

This is the recipe the plugin automates; if it breaks, the plugin cannot work either.
"""

from __future__ import annotations

import json
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
          audit-log-path: /var/log/kubernetes/kube-apiserver-audit.log
          audit-policy-file: /etc/kubernetes/policies/audit-policy.yaml
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
    config.write_text(KIND_CONFIG.format(policy=policy))
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
