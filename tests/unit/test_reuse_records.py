"""A reuse answers from the cluster's host record only what the record can prove: the node the record's run
made (its bind mounts), running, with the API server port of that run's kubeconfig; the same kind binary,
unchanged, and the same image option. Anything else falls back to asking kind, Docker and the node."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from pytest_kind_audit.environment import binary_identity, recorded_environment
from pytest_kind_audit.nodes import Node
from pytest_kind_audit.ownership import Fingerprint, RecordedCluster, Records, recorded_cluster

IMAGE = "kind-audit-ci/node:v1.34.4-2"
PORT = 41234


def node_attrs(source: Path, *, running: bool = True, paused: bool = False, port: int = PORT) -> dict[str, Any]:
    """A control-plane node as `docker inspect` shows it (the fields the record is checked against)."""
    return {
        "Id": "f" * 64,
        "Name": "/c-control-plane",
        "State": {"Running": running, "Paused": paused, "Status": "running" if running else "exited"},
        "Mounts": [{"Type": "bind", "Source": str(source), "Destination": "/etc/kubernetes/policies/p.yaml"}],
        "NetworkSettings": {"Ports": {"6443/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}},
    }


@pytest.fixture
def kind(tmp_path: Path) -> Path:
    binary = tmp_path / "bin" / "kind"
    binary.parent.mkdir()
    binary.write_text("#!/bin/sh\necho kind v0.30.0\n")
    binary.chmod(0o755)
    return binary


@pytest.fixture
def records(tmp_path: Path, kind: Path) -> Records:
    """The host record of cluster "c", made by run "r1", and the kubeconfig kind wrote for it."""
    records = Records(tmp_path / "clusters")
    real, stamp = binary_identity(str(kind))
    records.write("c", Fingerprint(run_id="r1", policy_sha256="p", image=IMAGE, keep=True, kind_binary=real,
                                   kind_binary_id=stamp, kind_version=(0, 30, 0), image_option=IMAGE,
                                   kubernetes_version=(1, 34, 4)))  # fmt: skip
    workdir = records.workdir("c", "r1")
    workdir.mkdir(parents=True)
    (workdir / "audit-policy.yaml").write_text("rules: []\n")
    (workdir / "kubeconfig").write_text(f"clusters:\n- cluster:\n    server: https://127.0.0.1:{PORT}\n")
    return records


def found(records: Records, **attrs: Any) -> RecordedCluster | None:
    source = attrs.pop("source", records.workdir("c", "r1") / "audit-policy.yaml")
    node = Node(node_attrs(source, **attrs))
    return recorded_cluster("c", records, inspect=lambda name: node if name == "c-control-plane" else None)


def test_the_record_answers_for_the_node_its_run_made(records: Records) -> None:
    recorded = found(records)
    assert recorded is not None
    assert recorded.fingerprint.run_id == "r1" and recorded.kubeconfig == records.workdir("c", "r1") / "kubeconfig"
    assert recorded.node.id == "f" * 64 and recorded.node.name == "c-control-plane"


def test_the_record_is_not_believed_for_another_node(records: Records, tmp_path: Path) -> None:
    assert found(records, source=tmp_path / "someone-else" / "policy.yaml") is None, "not made by the recorded run"
    assert found(records, running=False) is None
    assert found(records, paused=True) is None
    assert found(records, port=PORT + 1) is None, "a port that is not the recorded kubeconfig's"
    assert recorded_cluster("c", records, inspect=lambda name: None) is None, "no such node"
    assert recorded_cluster("other", records, inspect=lambda name: None) is None, "no record"
    (records.workdir("c", "r1") / "kubeconfig").unlink()  # kind never finished creating it
    assert found(records) is None


def test_an_old_record_without_the_environment_reads_but_answers_nothing(records: Records, kind: Path) -> None:
    data = json.loads(records.path("c").read_text())
    for key in ("kind_binary", "kind_binary_id", "kind_version", "image_option", "kubernetes_version"):
        del data[key]  # as a record written before they were recorded
    records.path("c").write_text(json.dumps(data))
    recorded = found(records)
    assert recorded is not None and recorded.fingerprint.kind_version == ()
    assert recorded_environment(str(kind), IMAGE, recorded) is None


def test_the_environment_comes_from_the_record_for_the_same_kind_and_image(
    records: Records, kind: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{kind.parent}{os.pathsep}{os.environ['PATH']}")
    recorded = found(records)
    assert recorded is not None
    env = recorded_environment("kind", IMAGE, recorded)
    assert env is not None
    assert (env.kind_binary, env.kind_version, env.kubernetes_version) == (shutil.which("kind"), (0, 30, 0), (1, 34, 4))
    assert (env.image, env.node_image, env.recorded) == (IMAGE, IMAGE, recorded)

    assert recorded_environment("kind", "kindest/node:v1.34.0", recorded) is None, "another image option"
    assert recorded_environment("", IMAGE, recorded) is None, "kind's default instead of the image option"
    assert recorded_environment("no-such-kind", IMAGE, recorded) is None
    stat = kind.stat()
    os.utime(kind, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # rebuilt in place
    assert recorded_environment("kind", IMAGE, recorded) is None


def test_a_cluster_with_other_nodes_is_not_reused_and_says_which() -> None:
    def fingerprint(*nodes: str) -> Fingerprint:
        return Fingerprint(run_id="r", policy_sha256="p", image=IMAGE, nodes=nodes)

    one, three = fingerprint("control-plane"), fingerprint("control-plane", "worker", "worker")
    assert one.mismatches(three) == ["nodes: 1 control plane on the cluster, 1 control plane + 2 workers requested"]
    assert three.mismatches(fingerprint("control-plane", "worker")) == [
        "nodes: 1 control plane + 2 workers on the cluster, 1 control plane + 1 worker requested"
    ]
    assert three.mismatches(three) == []
    # A record written before nodes were kept matches any, and reads back from JSON as a tuple.
    assert fingerprint().mismatches(three) == []
    restored = Fingerprint.from_json(three.to_json())
    assert restored is not None and restored.nodes == ("control-plane", "worker", "worker")
