from __future__ import annotations

import os
import shutil

import pytest


@pytest.fixture(scope="session")
def kind_binary() -> str:
    """The kind binary the real-cluster tests use (the same one the plugin resolves)."""
    name = os.environ.get("PYTEST_KIND_AUDIT_KIND_BINARY", "kind")
    found = shutil.which(name)
    if not found:
        pytest.fail(f"kind binary {name!r} not found: run ci/setup.sh and put bin/ on PATH", pytrace=False)
    return found


@pytest.fixture(scope="session")
def node_image() -> str:
    return os.environ.get("PYTEST_KIND_AUDIT_IMAGE", "")
