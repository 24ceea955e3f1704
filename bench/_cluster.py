"""A real kind cluster for a benchmark: the environment from PYTEST_KIND_AUDIT_*, a Metadata policy, deleted at
the end (the deletion's summary printed)."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pytest_kind_audit import AuditedCluster, AuditPolicy, Environment, KindConfig, check_environment


@contextmanager
def bench_cluster(prefix: str) -> Iterator[tuple[AuditedCluster, Environment]]:
    env = check_environment(
        os.environ.get("PYTEST_KIND_AUDIT_KIND_BINARY", "kind"), os.environ.get("PYTEST_KIND_AUDIT_IMAGE", "")
    )
    name = f"{prefix}-{secrets.token_hex(3)}"
    with tempfile.TemporaryDirectory(prefix=f"bench-{prefix}-") as tmp:
        workdir = Path(tmp)
        config = KindConfig.build(policy_file=workdir / "audit-policy.yaml", kind_version=env.kind_version,
                                  kubernetes_version=env.kubernetes_version,
                                  cgroup_v1_host=env.cgroup_v1_host)  # fmt: skip
        cluster = AuditedCluster.create(name=name, config=config, policy=AuditPolicy.for_level("Metadata"),
                                        workdir=workdir, environment=env)  # fmt: skip
        try:
            yield cluster, env
        finally:
            print(f"  cluster {name}: {cluster.delete().describe()}")
