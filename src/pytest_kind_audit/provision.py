"""Getting the run's cluster: create it, reuse a matching one, or attach to the one another worker made;
and deleting it at the end of the run. No pytest here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .cluster import AuditedCluster, Environment, delete_cluster, docker_client, reap_stale
from .exceptions import ClusterError
from .hub import WORKER_USER_PREFIX, ClusterHub, HubState
from .kindconfig import KindConfig
from .ownership import Fingerprint, Records, read_fingerprint

__all__ = ["ClusterRequest", "finish_run", "obtain_cluster"]


@dataclass(frozen=True)
class ClusterRequest:
    name: str
    config: KindConfig
    policy_yaml: str
    workdir: Path
    environment: Environment
    timeout: float = 10.0
    keep: bool = False
    reuse: bool = False

    def fingerprint(self, hub: ClusterHub) -> Fingerprint:
        return Fingerprint(
            run_id=hub.run_id,
            policy_sha256=Fingerprint.policy_hash(self.policy_yaml),
            image=self.environment.image,
            apiserver_args=dict(self.config.apiserver_args),
            keep=self.keep or self.reuse,
            owner_pid=hub.owner_pid,
            owner_start=hub.owner_start,
        )


def obtain_cluster(hub: ClusterHub, request: ClusterRequest, records: Records | None = None) -> AuditedCluster:
    """The run's cluster for this process. Under xdist each worker then acts as its own user, so its
    tests' windows can leave out what the other workers do."""
    records = records or Records()
    env = request.environment

    def make(state: HubState) -> AuditedCluster:
        state.name = request.name
        state.reaped = reap_stale(env.kind_binary, records)
        wanted = request.fingerprint(hub)
        if request.reuse:
            existing = _existing_fingerprint(request.name)
            if existing is not None:
                problems = existing.mismatches(wanted)
                if problems:
                    raise ClusterError(
                        f"cannot reuse cluster {request.name!r}: {'; '.join(problems)}. Delete it "
                        f"({env.kind_binary} delete cluster --name {request.name}) or pick another "
                        "--kind-audit-cluster-name"
                    )
                state.reused = True
                return AuditedCluster.attach(name=request.name, workdir=request.workdir, environment=env,
                                             timeout=request.timeout, skip_history=True)  # fmt: skip
        state.creations += 1
        cluster = AuditedCluster.create(name=request.name, config=request.config, workdir=request.workdir,
                                        environment=env, timeout=request.timeout, fingerprint=wanted,
                                        records=records)  # fmt: skip
        state.created = True
        return cluster

    def attach(state: HubState) -> AuditedCluster:
        return AuditedCluster.attach(name=request.name, workdir=request.workdir, environment=env,
                                     timeout=request.timeout, skip_history=state.reused, records=records)  # fmt: skip

    cluster = hub.get(make, attach)
    if hub.is_worker:
        user = WORKER_USER_PREFIX + hub.worker_id
        cluster.use_identity(user, request.workdir / f"kubeconfig-{hub.worker_id}")
    return cluster


def cluster_exists(name: str) -> bool:
    """Whether a kind cluster of that name runs here (False when Docker is not reachable)."""
    try:
        return bool(docker_client().containers.list(all=True, filters={"name": f"^{name}-control-plane$"}))
    except Exception:
        return False


def _existing_fingerprint(name: str) -> Fingerprint | None:
    """The fingerprint of a running cluster of that name; ClusterError if it is not one of ours."""
    from docker.errors import NotFound

    try:
        container = docker_client().containers.get(f"{name}-control-plane")
    except NotFound:
        return None
    found = read_fingerprint(container)
    if found is None:
        raise ClusterError(
            f"cannot reuse cluster {name!r}: it was not created by pytest-kind-audit, so its audit "
            "configuration is unknown; pick another --kind-audit-cluster-name"
        )
    return found


def finish_run(hub: ClusterHub, kind_binary: str, keep: bool, records: Records | None = None) -> HubState:
    """Owner only, once every worker has finished: delete the cluster this run created, unless kept."""
    records = records or Records()

    def delete(state: HubState) -> None:
        if not keep:  # a kept cluster's records say keep, so no later run reaps it
            delete_cluster(kind_binary, state.name)
            records.remove(state.name)

    return hub.finish(delete)
