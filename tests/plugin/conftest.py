from __future__ import annotations

import os

import pytest


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PYTEST_KIND_AUDIT_* or PYTEST_ADDOPTS from the outer run leaks into the runs a test starts, nor
    PYTEST_XDIST_* under ``pytest -n``: a run a test starts is no xdist worker (syrupy, seeing one, would
    leave its report to a controller that does not exist)."""
    for key in list(os.environ):
        if key.startswith(("PYTEST_KIND_AUDIT_", "PYTEST_XDIST_")) or key == "PYTEST_ADDOPTS":
            monkeypatch.delenv(key)
