"""Shared by the e2e tests that start whole pytest runs."""

from __future__ import annotations

import subprocess

from pytest_kind_audit.deletion import delete_cluster as plugin_delete_cluster


def node_containers(cluster: str) -> list[str]:
    """The Docker containers of a kind cluster (any state)."""
    out = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}", "--filter", f"label=io.x-k8s.kind.cluster={cluster}"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return out.split()


def delete_cluster(name: str) -> None:
    """Clean-up of a test's own cluster, whatever state the test left it in (the plugin's own deletion:
    an explicit kubeconfig, so ~/.kube/config is never edited; thawed and retried if stuck)."""
    deletion = plugin_delete_cluster("kind", name)
    assert deletion.deleted, f"clean-up of {name}: {deletion.describe()}"
