"""Stash keys shared by the hooks and the fixtures."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .hub import ClusterHub, HubState
from .options import Settings

if TYPE_CHECKING:  # the log (and the core behind it) loads when a test first opens a window
    from .log import AuditWindow

SETTINGS_KEY = pytest.StashKey[Settings]()
WINDOW_KEY: pytest.StashKey[AuditWindow] = pytest.StashKey()
HUB_KEY = pytest.StashKey[ClusterHub]()
FINISHED_KEY = pytest.StashKey[HubState]()
ARTIFACTS_KEY = pytest.StashKey[list[str]]()
OUTCOME_KEY = pytest.StashKey[str]()
