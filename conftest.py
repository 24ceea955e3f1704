"""The project's own test setup: pytester for the plugin tests, and the opt-in for real clusters."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


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
