"""Stash keys shared by the hooks and the fixtures."""

from __future__ import annotations

import pytest

from .hub import ClusterHub, HubState
from .log import AuditWindow
from .options import Settings

SETTINGS_KEY = pytest.StashKey[Settings]()
WINDOW_KEY = pytest.StashKey[AuditWindow]()
HUB_KEY = pytest.StashKey[ClusterHub]()
FINISHED_KEY = pytest.StashKey[HubState]()
ARTIFACTS_KEY = pytest.StashKey[list[str]]()
OUTCOME_KEY = pytest.StashKey[str]()
