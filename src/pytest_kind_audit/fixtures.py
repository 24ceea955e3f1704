"""The fixtures. Thin: each hands the settings to the pytest-free core. Every one can be overridden in a
conftest.py (for example ``kind_base_config`` to supply your own kind config).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import asserts
from .cluster import AuditedCluster, Environment, check_environment
from .exceptions import ConfigError, EnvironmentNotReady, KindAuditError
from .hub import WORKER_USER_PREFIX
from .kindconfig import KindConfig
from .log import AuditWindow
from .options import Settings
from .policy import AuditPolicy
from .provision import ClusterRequest, obtain_cluster
from .state import HUB_KEY, SETTINGS_KEY, WINDOW_KEY


@pytest.fixture(scope="session")
def kind_audit_settings(pytestconfig: pytest.Config) -> Settings:
    """The resolved --kind-audit-* options (CLI over env over ini over default)."""
    return pytestconfig.stash[SETTINGS_KEY]


@pytest.fixture(scope="session")
def kind_audit_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory holding the policy, the kind config and the kubeconfig of the session's cluster."""
    return tmp_path_factory.mktemp("kind-audit")


@pytest.fixture(scope="session")
def audit_policy(kind_audit_settings: Settings) -> AuditPolicy:
    """The audit policy the API server runs with: --kind-audit-policy, or the built-in one for
    --kind-audit-level. Override it to build a policy in Python (``AuditPolicy.from_dict``)."""
    return kind_audit_settings.audit_policy


@pytest.fixture(scope="session")
def kind_audit_environment(kind_audit_settings: Settings) -> Environment:
    """Docker, the kind binary and the node image, checked before a cluster is created. A missing piece
    skips the tests that need the cluster, or fails them with --kind-audit-require."""
    s = kind_audit_settings
    try:
        return check_environment(s.kind_binary, s.image)
    except EnvironmentNotReady as exc:
        problem = f"kind-audit: {exc}"
    # Outside the except block, so pytest shows one line and no chained exception.
    if s.require:
        pytest.fail(problem, pytrace=False)
    pytest.skip(problem)


@pytest.fixture(scope="session")
def kind_base_config(kind_audit_settings: Settings) -> dict[str, Any]:
    """The kind Cluster config the audit wiring is merged into: --kind-audit-kind-config, or empty.
    Override it to return your own config as a dict."""
    return kind_audit_settings.base_config


@pytest.fixture(scope="session")
def kind_config(
    kind_audit_settings: Settings,
    kind_base_config: dict[str, Any],
    audit_policy: AuditPolicy,
    kind_audit_environment: Environment,
    kind_audit_workdir: Path,
) -> KindConfig:
    """The kind config with auditing on: the policy file written and mounted, the API server flags and
    volumes in a kubeadm patch shaped for this kind and Kubernetes version."""
    env = kind_audit_environment
    policy_file = audit_policy.write(kind_audit_workdir / "audit-policy.yaml")
    try:
        return KindConfig.build(
            policy_file=policy_file,
            kind_version=env.kind_version,
            kubernetes_version=env.kubernetes_version,
            base=kind_base_config,
            apiserver_args=kind_audit_settings.apiserver_args,
            cgroup_v1_host=env.cgroup_v1_host,
        )
    except ConfigError as exc:
        problem = f"kind-audit: {exc}"
    pytest.fail(problem, pytrace=False)


@pytest.fixture(scope="session")
def audited_cluster(
    pytestconfig: pytest.Config,
    kind_config: KindConfig,
    audit_policy: AuditPolicy,
    kind_audit_environment: Environment,
    kind_audit_settings: Settings,
) -> AuditedCluster:
    """A kind cluster with API auditing, one per run (shared by all pytest-xdist workers) and deleted
    once at the end (also after failures and Ctrl-C) unless kept or reused. Offers ``.kubectl()``,
    ``.kubeconfig``, ``.name``, ``.kubernetes_version`` and ``.audit``, the session's audit events."""
    s = kind_audit_settings
    request = ClusterRequest(
        name=s.cluster_name,
        config=kind_config,
        policy_yaml=audit_policy.to_yaml(),
        workdir=Path(pytestconfig.stash[HUB_KEY].state_dir),
        environment=kind_audit_environment,
        timeout=s.timeout,
        keep=s.keep_cluster,
        reuse=s.reuse_cluster,
    )
    try:
        cluster = obtain_cluster(pytestconfig.stash[HUB_KEY], request)
    except KindAuditError as exc:  # the core's errors carry the whole story; no traceback for them
        problem = f"kind-audit: {exc}"
    else:
        problem = ""
    if problem:
        pytest.fail(problem, pytrace=False)
    cluster.audit.policy = audit_policy
    cluster.audit.identity = (cluster.identity, cluster.identity_groups)
    # Deleted by the run's owner in pytest_sessionfinish, after every worker is done.
    return cluster


@pytest.fixture
def audit_log(request: pytest.FixtureRequest, audited_cluster: AuditedCluster) -> AuditWindow:
    """The audit events of the current test: requests received from its setup on. Offers ``.events()``,
    ``.all()``, ``.assert_audited()`` and ``.assert_not_audited()``."""
    window: AuditWindow | None = request.node.stash.get(WINDOW_KEY, None)
    if window is None:  # requested dynamically, after the window hook ran
        window = _open_window(request.node, audited_cluster)
    return window


def _open_window(item: pytest.Item, cluster: AuditedCluster) -> AuditWindow:
    own = cluster.identity
    # Under xdist each worker acts as its own user: another worker's requests are not this test's.
    foreign = (
        (lambda e: e.user.username.startswith(WORKER_USER_PREFIX) and e.user.username != own)
        if own.startswith(WORKER_USER_PREFIX)
        else None
    )
    window = cluster.audit.window(label=f"the window of {item.name}", foreign=foreign)
    item.stash[WINDOW_KEY] = window
    asserts.set_current_window(window)
    return window


@pytest.fixture(autouse=True)
def _kind_audit_test_window(request: pytest.FixtureRequest) -> Iterator[None]:
    """Opens the test's audit window, for tests that use the cluster (others are left alone)."""
    names = request.fixturenames
    if "audited_cluster" not in names and "audit_log" not in names:
        yield
        return
    cluster: AuditedCluster = request.getfixturevalue("audited_cluster")
    window = _open_window(request.node, cluster)
    try:
        yield
    finally:
        window.close()
        asserts.set_current_window(None)
