"""Deleting a kind cluster, and saying so only when it is true: after ``kind delete`` the cluster's node
containers are looked for; what is left is thawed (a cgroup v1 freezer left FROZEN keeps Docker from
killing a node) and deleted again, within a time bound. No pytest here."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import _commands
from .exceptions import CommandError, KindAuditError
from .nodes import cluster_containers, docker_client, name_of, remove_containers, thaw_frozen_cgroups
from .ownership import made_by

__all__ = ["Deletion", "delete_cluster"]

DELETE_BUDGET = 180.0
DELETE_ATTEMPTS = 3


@dataclass
class Deletion:
    """What deleting one cluster did, checked against Docker."""

    name: str
    #: Node containers still there after every attempt (empty: the cluster is gone).
    left: list[str] = field(default_factory=list)
    #: Containers of that name this run did not create, left alone.
    foreign: list[str] = field(default_factory=list)
    #: Frozen cgroups thawed, and deletions tried again, to get there.
    thawed: int = 0
    retries: int = 0
    seconds: float = 0.0
    error: str = ""

    @property
    def deleted(self) -> bool:
        return not self.left and not self.error

    def recovery(self) -> str:
        """``" after thawing 2 frozen cgroups and 1 retry"``, or ``""`` when the first try did it."""
        steps = []
        if self.thawed:
            steps.append(f"thawing {self.thawed} frozen cgroup{'s' if self.thawed != 1 else ''}")
        if self.retries:
            steps.append(f"{self.retries} retr{'ies' if self.retries != 1 else 'y'}")
        return f" after {' and '.join(steps)}" if steps else ""

    def describe(self) -> str:
        """``deleted in 1.2s`` or, when it is not true, what is left and the command that removes it."""
        if self.deleted:
            return f"deleted in {self.seconds:.1f}s{self.recovery()}"
        if self.left:
            exist = "exists" if len(self.left) == 1 else "exist"
            return (f"NOT deleted: {', '.join(self.left)} still {exist}{self.recovery()}; remove with: "
                    f"docker rm -f {' '.join(self.left)}")  # fmt: skip
        return f"NOT deleted: {self.error}; remove with: kind delete cluster --name {self.name}"


def delete_cluster(
    kind_binary: str,
    name: str,
    kubeconfig: Path | None = None,
    *,
    made_in: Path | None = None,
    budget: float = DELETE_BUDGET,
    attempts: int = DELETE_ATTEMPTS,
) -> Deletion:
    """Delete cluster ``name`` and check that its node containers are gone.

    ``made_in``: delete only containers created with a bind mount from that directory (a failed create
    must never remove a cluster of the same name that somebody else made). ``kind delete`` always gets an
    explicit kubeconfig: without one it edits ~/.kube/config.
    """
    started = time.monotonic()
    result = Deletion(name)
    try:
        client = docker_client()
        found = cluster_containers(client, name)
    except KindAuditError as exc:
        result.error, result.seconds = f"cannot check its containers: {exc}", time.monotonic() - started
        return result
    if not found:  # nothing to delete: no kind process for it
        result.seconds = time.monotonic() - started
        return result
    if made_in is not None:
        result.foreign = sorted(name_of(c) for c in found if not made_by(c, made_in))
    ours = [c for c in found if name_of(c) not in result.foreign]
    for attempt in range(attempts):
        if attempt:
            result.retries += 1
            result.thawed += sum(thaw_frozen_cgroups(c) for c in ours)
        remaining = budget - (time.monotonic() - started)
        if remaining <= 0:
            break
        if result.foreign:  # kind deletes by name: remove only our own containers
            remove_containers(ours, remaining)
        else:
            _kind_delete(kind_binary, name, kubeconfig, remaining)
        ours = [c for c in cluster_containers(client, name) if name_of(c) not in result.foreign]
        if not ours:
            break
    result.left = sorted(name_of(c) for c in ours)
    result.seconds = time.monotonic() - started
    return result


def _kind_delete(kind_binary: str, name: str, kubeconfig: Path | None, timeout: float) -> None:
    with tempfile.TemporaryDirectory(prefix="kind-audit-") as scratch:
        path = kubeconfig if kubeconfig is not None else Path(scratch) / "kubeconfig"
        try:
            _commands.run([kind_binary, "delete", "cluster", "--name", name, "--kubeconfig", str(path)],
                          timeout=timeout, check=False)  # fmt: skip
        except CommandError:
            pass  # timed out or no kind: the caller looks at what is left
