"""The project's own real cluster for the e2e tests: one per session, with a policy that gives each
level its own namespace, so one cluster shows every level."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_kind_audit import AuditPolicy

LEVEL_NAMESPACES = {"None": "lvl-none", "Metadata": "lvl-metadata", "Request": "lvl-request"}


@pytest.fixture(scope="session")
def audit_policy() -> AuditPolicy:
    base = AuditPolicy.for_level("RequestResponse").to_dict()
    per_namespace = [{"level": level, "namespaces": [ns]} for level, ns in LEVEL_NAMESPACES.items()]
    base["rules"] = base["rules"][:-1] + per_namespace + base["rules"][-1:]
    return AuditPolicy.from_dict(base, source="tests/e2e/conftest.py")


@pytest.fixture
def whole_run_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests that start whole pytest runs: no inherited addopts, and a missing piece fails them."""
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    monkeypatch.setenv("PYTEST_KIND_AUDIT_REQUIRE", "1")


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, whole_run_env: None) -> Path:
    """A private host-record directory, so these runs see only their own leftovers."""
    monkeypatch.setenv("PYTEST_KIND_AUDIT_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


@pytest.fixture
def namespace(audit_namespace: str) -> str:
    """A fresh namespace for one test: the plugin's own ``audit_namespace`` (the project's tests call it
    ``namespace``)."""
    return audit_namespace
