"""pytest hooks of pytest-kind-audit: options, validation before any cluster, header, summary, reports.
The fixtures live in fixtures.py; the work is done by the pytest-free core.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

import pytest

from . import asserts
from .fixtures import (
    _kind_audit_test_window,
    audit_log,
    audit_policy,
    audited_cluster,
    kind_audit_environment,
    kind_audit_settings,
    kind_audit_workdir,
    kind_base_config,
    kind_config,
)
from .options import add_options, resolve
from .state import SETTINGS_KEY, WINDOW_KEY

__all__ = [
    "_kind_audit_test_window",
    "audit_log",
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
    config.stash[SETTINGS_KEY] = settings
    asserts.default_timeout = settings.timeout
    asserts.verbosity = max(0, int(config.option.verbose))


def pytest_report_header(config: pytest.Config) -> str:
    return config.stash[SETTINGS_KEY].header()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    settings = config.stash.get(SETTINGS_KEY, None)
    if settings is None or not settings.keep_cluster:
        return
    command = f"{settings.kind_binary} delete cluster --name {settings.cluster_name}"
    terminalreporter.write_line(f"kind-audit: cluster kept; delete it with: {command}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    window = item.stash.get(WINDOW_KEY, None)
    if window is None or not report.failed:
        return
    try:
        events = window.all()
    except Exception as exc:  # a dead cluster must not hide the test's own failure
        report.sections.append(("kind-audit events", f"could not read the audit log: {exc}"))
        return
    if item.config.option.verbose >= 2:  # -vv: every event as the API server wrote it
        text = "\n".join(json.dumps(dict(e.raw), sort_keys=False) for e in events)
    else:
        text = events.summary()
    report.sections.append((f"kind-audit events ({len(events)} in this test)", text or "(none)"))
