from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

DATA = Path(__file__).parent / "data"
AUDIT_LOGS = DATA / "audit-logs"  # real events, copied from shared/data/audit-logs (see SOURCES.md)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-e2e",
        action="store_true",
        default=False,
        help="Run the tests that create real kind clusters (needs Docker, kind and a node image)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-e2e"):
        return
    skip = pytest.mark.skip(reason="creates real kind clusters: run with --run-e2e")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


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
