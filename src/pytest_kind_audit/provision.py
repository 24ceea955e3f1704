"""Getting the run's cluster: create it, reuse a matching one, or attach to the one another worker made;
and deleting it at the end of the run, and what interrupted runs left. No pytest here."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from .deletion import delete_cluster
from .environment import Environment, binary_identity, recorded_environment
from .exceptions import ClusterError
from .hub import ClusterHub, HubState
from .kindconfig import KindConfig
from .nodes import control_plane, control_plane_name, docker_client, node_exists, start_reader_early
from .ownership import Fingerprint, Records, read_fingerprint, recorded_cluster, stale_clusters
from .policy import AuditPolicy

if TYPE_CHECKING:
    from .cluster import AuditedCluster
    from .nodes import NodeContainer

__all__ = ["ClusterRequest", "finish_run", "obtain_cluster", "reap_stale", "reusable_environment"]


@dataclass(frozen=True)
class ClusterRequest:
    name: str
    config: KindConfig
    policy: AuditPolicy
    environment: Environment
    #: The run's working directory for this cluster (Records.workdir): the policy file's bind-mount
    #: source, which proves which run made a node.
    workdir: Path
    timeout: float = 10.0
    keep: bool = False
    reuse: bool = False

    def fingerprint(self, hub: ClusterHub) -> Fingerprint:
        env = self.environment
        kind_binary, kind_binary_id = binary_identity(env.kind_binary)
        return Fingerprint(
            run_id=hub.run_id,
            policy_sha256=Fingerprint.policy_hash(self.policy.to_yaml()),
            # What the nodes boot from: kind's default is named too, so another kind's default mismatches.
            image=env.node_image or env.image,
            apiserver_args=dict(self.config.apiserver_args),
            keep=self.keep or self.reuse,
            owner_pid=hub.owner_pid,
            owner_start=hub.owner_start,
            kind_binary=kind_binary,
            kind_binary_id=kind_binary_id,
            kind_version=env.kind_version,
            image_option=env.image,
            kubernetes_version=env.kubernetes_version,
            nodes=self.config.roles,
        )


def reusable_environment(name: str, kind_binary: str, image: str, records: Records | None = None) -> Environment | None:
    """For --kind-audit-reuse-cluster: the environment of the running cluster ``name`` as its host record
    has it, when it is one of ours and this run asks for the same kind and image; None otherwise (check the
    environment in full). One inspect of its node, no kind process, no image look-up."""
    recorded = recorded_cluster(name, records or Records())
    env = recorded_environment(kind_binary, image, recorded) if recorded is not None else None
    if env is not None and recorded is not None and recorded.node.id:
        start_reader_early(recorded.node.id)  # its exec runs in the node while this run loads the rest
    return env


def obtain_cluster(hub: ClusterHub, request: ClusterRequest, records: Records | None = None) -> AuditedCluster:
    """The run's cluster for this process. Under xdist each worker then acts as its own user, so its
    tests' windows can leave out what the other workers do."""
    from .cluster import WORKER_USER_PREFIX, AuditedCluster  # the core, loaded when a test first needs it

    records = records or Records()
    env, workdir = request.environment, request.workdir

    def make(state: HubState) -> AuditedCluster:
        state.name, state.workdir = request.name, str(workdir)
        wanted = request.fingerprint(hub)
        if request.reuse:
            recorded = env.recorded if env.recorded is not None and env.recorded.name == request.name else None
            existing = recorded.fingerprint if recorded is not None else _existing_fingerprint(request.name)
            if existing is not None:
                problems = existing.mismatches(wanted)
                if problems:
                    raise ClusterError(
                        f"cannot reuse cluster {request.name!r}: {'; '.join(problems)}. Delete it "
                        f"({env.kind_binary} delete cluster --name {request.name}) or pick another "
                        "--kind-audit-cluster-name"
                    )
                state.reused = True
                return _attach(request, skip_history=True)
        # Only a run that creates a cluster looks for what interrupted runs left (a reuse stays quick).
        state.reaped, state.not_reaped = reap_stale(env.kind_binary, records)
        state.creations += 1
        cluster = AuditedCluster.create(name=request.name, config=request.config, policy=request.policy,
                                        workdir=workdir, environment=env, timeout=request.timeout,
                                        fingerprint=wanted, records=records)  # fmt: skip
        state.created = True
        return cluster

    def attach(state: HubState) -> AuditedCluster:
        return _attach(request, skip_history=state.reused, records=records)

    cluster = hub.get(make, attach)
    if hub.is_worker:
        user = WORKER_USER_PREFIX + hub.worker_id
        cluster.use_identity(user, workdir / f"kubeconfig-{hub.worker_id}")
    return cluster


def _attach(request: ClusterRequest, *, skip_history: bool, records: Records | None = None) -> AuditedCluster:
    """Attach to the running cluster: with what its host record already answers (its node as inspected,
    the kubeconfig kind wrote for it) when the environment came from that record, else by reading the
    node (AuditedCluster.attach)."""
    from .cluster import AuditedCluster

    env, recorded = request.environment, request.environment.recorded
    if recorded is None or recorded.name != request.name:
        return AuditedCluster.attach(name=request.name, workdir=request.workdir, environment=env,
                                     policy=request.policy, timeout=request.timeout, skip_history=skip_history,
                                     records=records)  # fmt: skip
    request.workdir.mkdir(parents=True, exist_ok=True)
    # A Node stands in for the SDK's Container: it answers id, name and attrs itself and fetches the
    # Container for anything else (the log's reader needs none of it).
    return AuditedCluster(request.name, kind_binary=env.kind_binary, kubeconfig=recorded.kubeconfig,
                          policy=request.policy.for_kubernetes(env.kubernetes_version), timeout=request.timeout,
                          created=False, skip_history=skip_history, records=records,
                          container=cast("NodeContainer", recorded.node))  # fmt: skip


def cluster_exists(name: str) -> bool:
    """Whether a kind cluster of that name runs here (False when Docker is not reachable)."""
    return node_exists(control_plane_name(name))


def _existing_fingerprint(name: str) -> Fingerprint | None:
    """The fingerprint of a running cluster of that name; ClusterError if it is not one of ours."""
    container = control_plane(docker_client(), name)
    if container is None:
        return None
    found = read_fingerprint(container)
    if found is None:
        raise ClusterError(
            f"cannot reuse cluster {name!r}: it was not created by pytest-kind-audit, so its audit "
            "configuration is unknown; pick another --kind-audit-cluster-name"
        )
    return found


def reap_stale(kind_binary: str, records: Records) -> tuple[dict[str, str], dict[str, str]]:
    """Delete the clusters interrupted runs of this plugin left behind. Return the summary lines of those
    removed (their containers are gone) and of those that could not be, by name."""
    removed: dict[str, str] = {}
    left: dict[str, str] = {}
    for name, why in stale_clusters(docker_client(), records).items():
        deletion = delete_cluster(kind_binary, name)
        if deletion.deleted:
            records.remove(name)
            removed[name] = f"removed stale cluster {name}: {why} ({deletion.describe()})"
        else:
            left[name] = f"could not remove stale cluster {name} ({why}): {deletion.describe()}"
    return removed, left


def finish_run(hub: ClusterHub, kind_binary: str, keep: bool, records: Records | None = None) -> HubState:
    """Owner only, once every worker has finished: delete the cluster this run created, unless kept, and
    record what the deletion really did."""
    records = records or Records()

    def delete(state: HubState) -> None:
        if state.created and not keep:  # a kept cluster's records say keep, so no later run reaps it
            deletion = delete_cluster(kind_binary, state.name, made_in=Path(state.workdir))
            state.deleted, state.deletion = deletion.deleted, deletion.describe()
            if deletion.deleted:
                records.remove(state.name)
        elif not state.created and state.workdir:  # a reused cluster: only this run's own files go
            shutil.rmtree(state.workdir, ignore_errors=True)

    return hub.finish(delete)
