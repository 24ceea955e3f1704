"""Which clusters this plugin made, for whom, with what audit configuration; and removing the ones an
interrupted run left behind (never a cluster the plugin did not create).

Two records of each cluster:
* a fingerprint file inside the control-plane container (``/kind-audit/cluster.json``, bind-mounted from the
  run's directory): run id, creation time, creator, and the audit configuration a reuse must match;
* a host record written *before* ``kind create`` starts, so a run killed mid-creation is still known.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from .kindconfig import POLICY_PATH
from .nodes import (
    NODE_DIR,
    Node,
    api_server_url,
    bind_sources,
    control_plane_name,
    control_planes,
    inspect_node,
    read_file,
)

if TYPE_CHECKING:
    from .nodes import DockerClient
    from .nodes import NodeContainer as Container

__all__ = [
    "FINGERPRINT_PATH",
    "Fingerprint",
    "RecordedCluster",
    "Records",
    "process_start",
    "read_fingerprint",
    "recorded_cluster",
    "write_fingerprint_file",
]

FINGERPRINT_PATH = f"{NODE_DIR}/cluster.json"
# What must be equal for a cluster to be reused.
MATCHED = ("policy_sha256", "backend", "image", "apiserver_args", "nodes")


def process_start(pid: int) -> str:
    """The start time of ``pid`` in clock ticks since boot, plus the boot id: with the pid, it names one
    process for good (a pid alone is reused). ``""`` if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""
    return f"{boot}:{stat.rsplit(')', 1)[1].split()[19]}"


def alive(pid: int, start: str) -> bool:
    return bool(start) and process_start(pid) == start


@dataclass(frozen=True)
class Fingerprint:
    run_id: str
    policy_sha256: str
    image: str
    apiserver_args: Mapping[str, str] = field(default_factory=dict)
    backend: str = "log"
    keep: bool = False
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    host: str = field(default_factory=socket.gethostname)
    owner_pid: int = field(default_factory=os.getpid)
    owner_start: str = field(default_factory=lambda: process_start(os.getpid()))
    plugin: str = "pytest-kind-audit"
    # What the creating run found, so a reuse need not ask again (recorded_cluster): the kind binary (real
    # path, and size:mtime to know it unchanged), its version, the image option and the nodes' Kubernetes.
    kind_binary: str = ""
    kind_binary_id: str = ""
    kind_version: tuple[int, ...] = ()
    image_option: str = ""
    kubernetes_version: tuple[int, ...] = ()
    #: The nodes' roles in the kind config's order ("control-plane", "worker", ...); () in records written
    #: before they were kept, which then match any.
    nodes: tuple[str, ...] = ()

    @staticmethod
    def policy_hash(policy_yaml: str) -> str:
        return hashlib.sha256(policy_yaml.encode()).hexdigest()

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str | bytes) -> Fingerprint | None:
        try:
            data = json.loads(text)
            if data.get("plugin") != "pytest-kind-audit":
                return None
            fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
            for key in ("kind_version", "kubernetes_version"):  # JSON has lists
                fields[key] = tuple(int(n) for n in fields.get(key) or ())
            fields["nodes"] = tuple(str(role) for role in fields.get("nodes") or ())
            return cls(**fields)
        except (ValueError, TypeError, AttributeError):
            return None

    def mismatches(self, wanted: Fingerprint) -> list[str]:
        """The audit settings that differ, as readable lines."""
        out = []
        for key in MATCHED:
            have, want = getattr(self, key), getattr(wanted, key)
            if key == "apiserver_args":
                have, want = dict(have), dict(want)
            if key == "nodes" and not have:
                continue  # recorded before nodes were: unknown
            if have != want:
                if key == "nodes":
                    out.append(f"nodes: {_roles(have)} on the cluster, {_roles(want)} requested")
                elif key == "policy_sha256":
                    out.append(f"audit policy differs (sha256 {have[:12]} on the cluster, {want[:12]} requested)")
                else:
                    out.append(f"{key}: {have!r} on the cluster, {want!r} requested")
        return out

    def owner_alive(self) -> bool:
        return self.host == socket.gethostname() and alive(self.owner_pid, self.owner_start)


def _roles(nodes: tuple[str, ...]) -> str:
    workers = nodes.count("worker")
    plural = "s" * (workers > 1)
    return f"{nodes.count('control-plane')} control plane" + (f" + {workers} worker{plural}" if workers else "")


def write_fingerprint_file(workdir: Path, fingerprint: Fingerprint) -> Path:
    """The fingerprint as a file in the run's directory, to be bind-mounted at FINGERPRINT_PATH in the
    control-plane node (it lives as long as the cluster, like the policy file beside it)."""
    path = workdir / "cluster.json"
    path.write_text(fingerprint.to_json())
    return path


def read_fingerprint(container: Container) -> Fingerprint | None:
    """The fingerprint in a node, or None (not ours, or made by a run killed before it was written)."""
    data = read_file(container, FINGERPRINT_PATH)
    return Fingerprint.from_json(data) if data is not None else None


def made_by(container: Container | Node, workdir: Path) -> bool:
    """Whether ``container`` was created with a bind mount from ``workdir``: true from the moment the
    container exists, so it proves who made a node even when creation was cut short."""
    return any(Path(source).is_relative_to(workdir) for source in bind_sources(container))


def _has_audit_policy_mount(container: Container) -> bool:
    """Every node this plugin creates has its audit policy bind-mounted, from the moment it exists."""
    mounts = container.attrs.get("Mounts") or []
    return any(m.get("Type") == "bind" and m.get("Destination") == POLICY_PATH for m in mounts)


def state_dir() -> Path:
    """Where the plugin keeps what outlives a run: $PYTEST_KIND_AUDIT_STATE_DIR, else
    $XDG_STATE_HOME/pytest-kind-audit (~/.local/state/pytest-kind-audit)."""
    default = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "pytest-kind-audit"
    return Path(os.environ.get("PYTEST_KIND_AUDIT_STATE_DIR", default))


class Records:
    """Host records of the clusters this plugin is creating or has created (one JSON file each)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.dir = directory or state_dir() / "clusters"

    def path(self, name: str) -> Path:
        return self.dir / f"{name}.json"

    def workdir(self, name: str, run_id: str) -> Path:
        """The working directory of one run on one cluster: audit policy (bind-mounted into the node, so it
        must outlive a kept cluster), kind config, kubeconfigs. Removed with the cluster."""
        return self.dir / name / run_id

    def get(self, name: str) -> Fingerprint | None:
        try:
            return Fingerprint.from_json(self.path(name).read_bytes())
        except OSError:
            return None

    def write(self, name: str, fingerprint: Fingerprint) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path(name).with_suffix(".tmp")
        tmp.write_text(fingerprint.to_json())
        os.replace(tmp, self.path(name))

    def remove(self, name: str) -> None:
        """Forget a cluster that is gone: its record and every run's working directory on it."""
        self.path(name).unlink(missing_ok=True)
        shutil.rmtree(self.dir / name, ignore_errors=True)

    def all(self) -> dict[str, Fingerprint]:
        out = {}
        for p in sorted(self.dir.glob("*.json")) if self.dir.is_dir() else ():
            fp = Fingerprint.from_json(p.read_bytes())
            if fp is not None:
                out[p.stem] = fp
        return out


def stale_clusters(client: DockerClient, records: Records) -> dict[str, str]:
    """Clusters this plugin made whose run is gone and that nobody asked to keep: name -> why."""
    nodes = control_planes(client)
    stale: dict[str, str] = {}
    recorded = records.all()
    for name, fp in recorded.items():
        if fp.owner_alive() or fp.host != socket.gethostname():
            continue
        if name not in nodes:
            records.remove(name)  # nothing left of it (also a kept cluster someone deleted with kind)
        elif fp.keep or not made_by(nodes[name], records.workdir(name, fp.run_id)):
            continue  # kept, or the name now belongs to another cluster (a user's, or another run's)
        else:
            stale[name] = f"run {fp.run_id} (pid {fp.owner_pid}) ended without deleting it"
    for name, container in nodes.items():  # ours by their fingerprint, though the host record is gone
        if name in stale or name in recorded or not _has_audit_policy_mount(container):
            continue  # a node without our policy mount has no fingerprint to read (another tool's cluster)
        found = read_fingerprint(container)
        if found is not None and not found.keep and not found.owner_alive() and found.host == socket.gethostname():
            stale[name] = f"run {found.run_id} (pid {found.owner_pid}) ended without deleting it"
    return stale


@dataclass(frozen=True)
class RecordedCluster:
    """A running cluster of this plugin's, known from its host record: what reusing it needs, without
    asking kind, the image or the node itself."""

    name: str
    fingerprint: Fingerprint
    #: Its control-plane node, from one inspect.
    node: Node
    #: The kubeconfig kind wrote when the recorded run created it (kind writes it once the cluster is up).
    kubeconfig: Path


def recorded_cluster(
    name: str, records: Records, inspect: Callable[[str], Node | None] = inspect_node
) -> RecordedCluster | None:
    """The running cluster ``name`` as its host record has it, or None (then ask the node itself).

    The record is believed only for the node it describes: one that runs, carries a bind mount from the
    recorded run's working directory (made_by: that run created it, and wrote the node's fingerprint from
    the same record), and whose published API server port is the one in that run's kubeconfig."""
    fingerprint = records.get(name)
    if fingerprint is None:
        return None
    node = inspect(control_plane_name(name))
    if node is None:
        return None
    state = node.attrs.get("State") or {}
    workdir = records.workdir(name, fingerprint.run_id)
    if not state.get("Running") or state.get("Paused") or not made_by(node, workdir):
        return None
    kubeconfig = workdir / "kubeconfig"
    server = api_server_url(node)
    try:
        if server is None or f"server: {server}\n" not in kubeconfig.read_text():
            return None
    except OSError:
        return None
    return RecordedCluster(name, fingerprint, node, kubeconfig)
