"""Errors raised by the pytest-free core. The pytest layer turns them into skips, fails or usage errors."""

from __future__ import annotations


class KindAuditError(Exception):
    """Base class of every error this package raises on purpose."""


class PolicyError(KindAuditError):
    """An audit policy the API server would refuse to start with."""


class ConfigError(KindAuditError):
    """A kind cluster config that cannot carry the audit wiring."""


class EnvironmentNotReady(KindAuditError):
    """Docker, kind or the node image is missing: one line that names the fix."""


class CommandError(KindAuditError):
    """A subprocess (kind, kubectl, docker) failed."""

    def __init__(self, argv: list[str], returncode: int, stdout: str, stderr: str) -> None:
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        super().__init__(f"command failed with exit code {returncode}: {' '.join(argv)}\n{tail}".rstrip())


class KindAuditWarning(UserWarning):
    """Something that works but probably not as meant (a policy key the API server drops)."""


class ClusterError(KindAuditError):
    """The cluster could not be created, reached or deleted."""


class NoAuditWindow(KindAuditError):
    """A bare assert_audited() outside a test that uses the audited cluster."""


class LogStreamBroken(ClusterError):
    """The node's audit log cannot be read and its reader cannot be started again (node stopped, paused,
    Docker down)."""


class RbacError(KindAuditError, ValueError):
    """RBAC input that cannot be used: a manifest that is not an RBAC object, a subject that made no request."""


class ImageLoadError(KindAuditError):
    """An image could not be put into a cluster's nodes: it is not on this host, or ``kind load`` failed."""
