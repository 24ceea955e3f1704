"""Real kind clusters with Kubernetes API auditing for pytest, and the audit events as a typed stream."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .asserts import assert_audited, assert_not_audited
    from .cluster import AuditedCluster
    from .collection import AuditEvents
    from .deletion import Deletion
    from .environment import Environment, check_environment
    from .events import AuditEvent, ObjectRef, ResponseStatus, UserInfo, parse_text
    from .exceptions import (
        ClusterError,
        CommandError,
        ConfigError,
        EnvironmentNotReady,
        ImageLoadError,
        KindAuditError,
        KindAuditWarning,
        NoAuditWindow,
        PolicyError,
    )
    from .follow import FileSource
    from .kindconfig import KindConfig
    from .log import AuditLog, AuditWindow
    from .nodes import DockerLogSource
    from .policy import LEVELS, AuditPolicy
    from .query import FILTERS, AuditQuery

    __version__: str


# Where each public name lives. Loaded on first use (PEP 562): pytest imports this package to load the
# plugin, and a run that makes no cluster (``--co``, a reused cluster) should not pay for the whole core.
_HOMES = {
    "assert_audited": "asserts",
    "assert_not_audited": "asserts",
    "AuditedCluster": "cluster",
    "AuditEvents": "collection",
    "Deletion": "deletion",
    "Environment": "environment",
    "check_environment": "environment",
    "AuditEvent": "events",
    "ObjectRef": "events",
    "ResponseStatus": "events",
    "UserInfo": "events",
    "parse_text": "events",
    "ClusterError": "exceptions",
    "CommandError": "exceptions",
    "ConfigError": "exceptions",
    "EnvironmentNotReady": "exceptions",
    "ImageLoadError": "exceptions",
    "KindAuditError": "exceptions",
    "KindAuditWarning": "exceptions",
    "NoAuditWindow": "exceptions",
    "PolicyError": "exceptions",
    "FileSource": "follow",
    "KindConfig": "kindconfig",
    "AuditLog": "log",
    "AuditWindow": "log",
    "DockerLogSource": "nodes",
    "LEVELS": "policy",
    "AuditPolicy": "policy",
    "FILTERS": "query",
    "AuditQuery": "query",
}

__all__ = [
    "FILTERS",
    "LEVELS",
    "AuditEvent",
    "AuditEvents",
    "AuditLog",
    "AuditPolicy",
    "AuditQuery",
    "AuditWindow",
    "AuditedCluster",
    "ClusterError",
    "CommandError",
    "ConfigError",
    "Deletion",
    "DockerLogSource",
    "Environment",
    "EnvironmentNotReady",
    "FileSource",
    "ImageLoadError",
    "KindAuditError",
    "KindAuditWarning",
    "KindConfig",
    "NoAuditWindow",
    "ObjectRef",
    "PolicyError",
    "ResponseStatus",
    "UserInfo",
    "__version__",
    "assert_audited",
    "assert_not_audited",
    "check_environment",
    "parse_text",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("pytest-kind-audit")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            value = "0.0.0"
    elif name in _HOMES:
        value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # once: later look-ups find it without this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
