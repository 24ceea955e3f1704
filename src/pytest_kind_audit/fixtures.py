"""The fixtures. Thin: each hands the settings to the pytest-free core. Every one can be overridden in a
conftest.py (for example ``kind_base_config`` to supply your own kind config).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .exceptions import ConfigError, EnvironmentNotReady, KindAuditError
from .state import HUB_KEY, SETTINGS_KEY, WINDOW_KEY

# The core is imported by the fixtures that use it, not here: pytest loads this module with the plugin, and
# a run that asks for no cluster (``--co``, tests without one) should not import it.
if TYPE_CHECKING:
    from .cluster import AuditedCluster
    from .environment import Environment
    from .kindconfig import KindConfig
    from .log import AuditWindow
    from .options import Settings
    from .policy import AuditPolicy


@pytest.fixture(scope="session")
def kind_audit_settings(pytestconfig: pytest.Config) -> Settings:
    """The resolved --kind-audit-* options (CLI over env over ini over default)."""
    return pytestconfig.stash[SETTINGS_KEY]


@pytest.fixture(scope="session")
def kind_audit_workdir(pytestconfig: pytest.Config, kind_audit_settings: Settings) -> Path:
    """The run's directory for its cluster: the audit policy (bind-mounted into the node, so it lives as
    long as the cluster, kept or not), the kind config and the kubeconfigs. Outside pytest's temporary
    folders, which later runs delete; removed when the cluster is deleted."""
    from .ownership import Records

    return Records().workdir(kind_audit_settings.cluster_name, pytestconfig.stash[HUB_KEY].run_id)


@pytest.fixture(scope="session")
def audit_policy(kind_audit_settings: Settings) -> AuditPolicy:
    """The audit policy the API server runs with: --kind-audit-policy, or the built-in one for
    --kind-audit-level. Override it to build a policy in Python (``AuditPolicy.from_dict``)."""
    return kind_audit_settings.audit_policy


@pytest.fixture(scope="session")
def kind_audit_environment(kind_audit_settings: Settings) -> Environment:
    """Docker, the kind binary and the node image, checked before a cluster is created. A missing piece
    skips the tests that need the cluster, or fails them with --kind-audit-require."""
    from .environment import check_environment
    from .provision import reusable_environment

    s = kind_audit_settings
    try:
        # A cluster to reuse answers from its host record what a check would ask kind, Docker and the image.
        recorded = reusable_environment(s.cluster_name, s.kind_binary, s.image) if s.reuse_cluster else None
        return recorded or check_environment(s.kind_binary, s.image)
    except EnvironmentNotReady as exc:
        problem, fail = f"kind-audit: {exc}", s.require
    except ConfigError as exc:  # a kind too old for the image's Kubernetes: wrong, not missing
        problem, fail = f"kind-audit: {exc}", True
    # Outside the except block, so pytest shows one line and no chained exception.
    if fail:
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
    from .kindconfig import KindConfig

    env = kind_audit_environment
    try:
        return KindConfig.build(
            policy_file=kind_audit_workdir / "audit-policy.yaml",  # written by the process that creates it
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
    kind_audit_workdir: Path,
) -> Iterator[AuditedCluster]:
    """A kind cluster with API auditing, one per run (shared by all pytest-xdist workers) and deleted
    once at the end (also after failures and Ctrl-C) unless kept or reused. Offers ``.kubectl()``,
    ``.kubeconfig``, ``.name``, ``.kubernetes_version`` and ``.audit``, the session's audit events."""
    from .provision import ClusterRequest, obtain_cluster

    s = kind_audit_settings
    request = ClusterRequest(
        name=s.cluster_name,
        config=kind_config,
        policy=audit_policy,
        environment=kind_audit_environment,
        workdir=kind_audit_workdir,
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
    yield cluster
    # Deleted by the run's owner in pytest_sessionfinish, after every worker is done; the log's reader
    # in the node stops here.
    cluster.close()


@pytest.fixture
def audit_log(request: pytest.FixtureRequest, audited_cluster: AuditedCluster) -> Iterator[AuditWindow]:
    """The audit events of the current test: requests received from its setup on. Offers ``.events()``,
    ``.all()``, ``.assert_audited()`` and ``.assert_not_audited()``."""
    window: AuditWindow | None = request.node.stash.get(WINDOW_KEY, None)
    if window is not None:
        yield window
        return
    with _test_window(request.node, audited_cluster) as window:  # requested dynamically, after the hook ran
        yield window


@pytest.fixture
def audit_namespace(request: pytest.FixtureRequest, audited_cluster: AuditedCluster) -> Iterator[str]:
    """A fresh namespace for this test (``kat-<test name>-<random>``), ready for pods: its default
    ServiceAccount and kube-root-ca.crt ConfigMap exist. Deleted after the test, without waiting for its
    finalization. Its creation and deletion are setup: left out of ``audit_log``, and
    ``audit_log.in_namespace()`` and ``audit_log.trail()`` default to it."""
    from .namespaces import fresh_namespace

    window: AuditWindow | None = request.node.stash.get(WINDOW_KEY, None)  # opened by the autouse fixture
    with ExitStack() as stack:
        try:
            namespace = stack.enter_context(fresh_namespace(audited_cluster, label=request.node.name, window=window))
        except KindAuditError as exc:  # one line: what is missing, and where to look
            problem = f"kind-audit: {exc}"
        else:
            problem = ""
        if problem:
            pytest.fail(problem, pytrace=False)
        yield namespace.name


@contextmanager
def _test_window(item: pytest.Item, cluster: AuditedCluster) -> Iterator[AuditWindow]:
    """The test's window, the target of the bare asserts until the test ends."""
    from .asserts import reset_current_window, set_current_window

    verbosity = max(0, int(item.config.option.verbose))
    window = cluster.window(label=f"the window of {item.name}", verbosity=verbosity)
    item.stash[WINDOW_KEY] = window
    token = set_current_window(window)
    try:
        yield window
    finally:
        window.close()
        reset_current_window(token)


@pytest.fixture(autouse=True)
def _kind_audit_test_window(request: pytest.FixtureRequest) -> Iterator[None]:
    """Opens the test's audit window, for tests that use the cluster (others are left alone)."""
    names = request.fixturenames
    if "audited_cluster" not in names and "audit_log" not in names:
        yield
        return
    with _test_window(request.node, request.getfixturevalue("audited_cluster")):
        yield
