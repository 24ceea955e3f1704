"""Which nodes a ``kubectl get nodes -o json`` answer shows not Ready (what ``wait_for_nodes`` waits for)."""

from __future__ import annotations

from typing import Any

from pytest_kind_audit.cluster import not_ready

NO_CNI = "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady"


def node(name: str, *conditions: tuple[str, str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "status": {"conditions": [{"type": t, "status": s, "message": m} for t, s, m in conditions]},
    }


def test_ready_nodes_are_not_waited_for() -> None:
    nodes = {
        "items": [node("c-control-plane", ("MemoryPressure", "False", "ok"), ("Ready", "True", "kubelet is ready"))]
    }
    assert not_ready(nodes, 1) == {}


def test_each_node_not_ready_with_its_ready_message() -> None:
    nodes = {
        "items": [
            node("c-control-plane", ("Ready", "True", "kubelet is ready")),
            node("c-worker", ("Ready", "False", NO_CNI)),
            node("c-worker2", ("Ready", "Unknown", "")),
            node("c-worker3"),
        ]
    }
    assert not_ready(nodes, 4) == {
        "c-worker": NO_CNI,
        "c-worker2": "Ready=Unknown",
        "c-worker3": "no Ready condition yet",
    }


def test_nodes_not_registered_yet_are_waited_for() -> None:
    nodes = {"items": [node("c-control-plane", ("Ready", "True", "kubelet is ready"))]}
    assert not_ready(nodes, 3) == {"not registered": "2 of 3 nodes"}
    assert not_ready({"items": []}, 1) == {"not registered": "1 of 1 nodes"}
