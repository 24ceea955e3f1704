"""Stash keys shared by the hooks and the fixtures."""

from __future__ import annotations

import pytest

from .log import AuditWindow
from .options import Settings

SETTINGS_KEY = pytest.StashKey[Settings]()
WINDOW_KEY = pytest.StashKey[AuditWindow]()
CLUSTER_NAME_KEY = pytest.StashKey[str]()
