"""pytest hooks of pytest-kind-audit: options, validation before any cluster, header, summary, reports.
The fixtures live in fixtures.py; the work is done by the pytest-free core.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator
from datetime import datetime, timezone
from typing import Any

import pytest

from .exceptions import KindAuditWarning
from .fixtures import (
    _kind_audit_test_window,
    audit_log,
    audit_namespace,
    audit_policy,
    audited_cluster,
    kind_audit_environment,
    kind_audit_settings,
    kind_audit_workdir,
    kind_base_config,
    kind_config,
)
from .hub import ClusterHub, HubState
from .options import add_options, resolve
from .state import ARTIFACTS_KEY, FINISHED_KEY, HUB_KEY, SETTINGS_KEY, WINDOW_KEY

__all__ = [
    "_kind_audit_test_window",
    "audit_log",
    "audit_namespace",
    "audit_policy",
    "audited_cluster",
    "kind_audit_environment",
    "kind_audit_settings",
    "kind_audit_workdir",
    "kind_base_config",
    "kind_config",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # Validated here, so a bad option or policy stops the run before any cluster exists.
    settings = resolve(config)
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "kind_audit" in workerinput:
        shared = workerinput["kind_audit"]
        hub = ClusterHub.for_worker(shared, workerinput["workerid"])
        settings = dataclasses.replace(settings, cluster_name=shared["cluster_name"])
    else:
        hub = ClusterHub.new_run()
    config.stash[SETTINGS_KEY] = settings
    config.stash[HUB_KEY] = hub
    if not hub.is_worker:
        for line in settings.audit_policy.misspellings():
            config.issue_config_time_warning(KindAuditWarning(line), stacklevel=2)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(), "kind-audit-xdist")


class XdistHooks:
    """Hands the run's state directory and cluster name to every worker (a random default name would
    otherwise differ per process)."""

    def pytest_configure_node(self, node: Any) -> None:
        config = node.config
        shared = config.stash[HUB_KEY].to_workerinput()
        shared["cluster_name"] = config.stash[SETTINGS_KEY].cluster_name
        node.workerinput["kind_audit"] = shared


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    # trylast: after pytest has torn down every fixture; under xdist, after every worker has finished.
    config = session.config
    hub = config.stash.get(HUB_KEY, None)
    if hub is None or hub.is_worker:
        return
    from .provision import finish_run

    s = config.stash[SETTINGS_KEY]
    state = hub.read()
    try:
        if state.status == "ready":  # artifacts first: the cluster may be deleted next
            from .artifacts import write_artifacts

            config.stash[ARTIFACTS_KEY] = write_artifacts(hub, state.name, s)
    finally:  # whatever happened to the artifacts, the cluster is deleted
        finished = finish_run(hub, s.kind_binary, keep=s.keep_cluster or s.reuse_cluster)
    config.stash[FINISHED_KEY] = finished
    if _teardown_failed(finished) and session.exitstatus == pytest.ExitCode.OK:
        # All tests passed, but a cluster is left behind: the run must not look clean.
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _teardown_failed(state: HubState) -> bool:
    """A cluster this run created, or a stale one it found, is still there."""
    return (state.created and bool(state.deletion) and not state.deleted) or bool(state.not_reaped)


def pytest_report_header(config: pytest.Config) -> str:
    from .provision import cluster_exists

    settings = config.stash[SETTINGS_KEY]
    how = "created"
    if settings.reuse_cluster and cluster_exists(settings.cluster_name):
        how = "reused"
    return settings.header(how)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    settings = config.stash.get(SETTINGS_KEY, None)
    state = config.stash.get(FINISHED_KEY, None)
    if settings is None or state is None:
        return
    for line in config.stash.get(ARTIFACTS_KEY, []):
        terminalreporter.write_line(line)
    for line in state.reaped.values():
        terminalreporter.write_line(f"kind-audit: {line}")
    for line in state.not_reaped.values():
        terminalreporter.write_line(f"kind-audit: {line}", red=True)
    if state.status != "ready":
        return
    how = "reused" if state.reused else f"created {state.creations} time{'s' if state.creations != 1 else ''}"
    shared = f", shared by {len(state.workers)} workers" if state.workers else ""
    kept = settings.keep_cluster or settings.reuse_cluster
    fate = "kept" if kept or not state.created else state.deletion
    terminalreporter.write_line(f"kind-audit: cluster {state.name} {how}{shared}, {fate}", red=_teardown_failed(state))
    if kept:
        command = f"{settings.kind_binary} delete cluster --name {settings.cluster_name}"
        terminalreporter.write_line(f"kind-audit: cluster kept; delete it with: {command}")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    # The test function starts: what came before is fixture setup, which a golden trail leaves out.
    window = item.stash.get(WINDOW_KEY, None)
    if window is not None:
        window.body_start = datetime.now(timezone.utc)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    window = item.stash.get(WINDOW_KEY, None)
    if window is not None:  # artifacts.py: the failure's section, HTML, pytest-html and JUnit
        from .artifacts import report_test

        report_test(item, call, outcome.get_result(), window)
