"""Real kind clusters with Kubernetes API auditing for pytest, and the audit events as a typed stream."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

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

try:
    __version__ = version("pytest-kind-audit")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

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
