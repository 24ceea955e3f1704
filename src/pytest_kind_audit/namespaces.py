"""A fresh namespace per test, ready for pods, and the view of a window's events in one namespace.

A new namespace is not ready at once: kube-controller-manager creates its ``default`` ServiceAccount (pods
without it are refused) and its ``kube-root-ca.crt`` ConfigMap (the kubelet mounts it into every pod) a
moment later. ``fresh_namespace`` polls for both, so the test starts with a settled namespace. Its own
requests and the controllers' answers to the new namespace are setup: ``is_setup`` picks them, and a
window told so leaves them out (see ``AuditWindow.leave_out``). pytest-free: a script can do the same.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

from .asserts import AssertMethods
from .collection import AuditEvents
from .exceptions import ClusterError

if TYPE_CHECKING:
    from .events import AuditEvent
    from .log import AuditWindow
    from .policy import AuditPolicy

__all__ = ["FreshNamespace", "NamespaceView", "fresh_namespace", "namespace_name"]

# What the namespace needs before a pod can run in it, as raw API paths: no discovery requests.
_READY_PATHS = ("serviceaccounts/default", "configmaps/kube-root-ca.crt")
_POLL_INTERVAL = 0.05
_MAX_NAME = 63


class Kubectl(Protocol):
    """What a namespace needs of a cluster (an AuditedCluster)."""

    identity: str

    def kubectl(
        self, *args: str, input: str | bytes | None = None, check: bool = True, timeout: float = 120
    ) -> str: ...


def namespace_name(label: str = "") -> str:
    """A unique, valid namespace name that says whose it is: ``kat-<label>-<8 hex>`` (a DNS label)."""
    suffix = secrets.token_hex(4)
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
    slug = slug[: _MAX_NAME - len("kat--") - len(suffix)].strip("-")
    return f"kat-{slug}-{suffix}" if slug else f"kat-{suffix}"


class FreshNamespace:
    """A namespace this process created: its name, and when its setup and teardown happened."""

    def __init__(self, cluster: Kubectl, name: str) -> None:
        self.cluster = cluster
        self.name = name
        self.identity = cluster.identity
        self.started = datetime.now(timezone.utc)
        self.ready: datetime | None = None
        self.deleting: datetime | None = None

    def create(self, timeout: float = 60.0) -> None:
        """Create it and wait until it is ready for pods (polling, ``timeout`` seconds at most)."""
        manifest = f'{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{self.name}"}}}}'
        self.cluster.kubectl("create", "--raw", "/api/v1/namespaces", "-f", "-", input=manifest)
        deadline = time.monotonic() + timeout
        for path in _READY_PATHS:
            while not self.cluster.kubectl("get", "--raw", f"/api/v1/namespaces/{self.name}/{path}", check=False):
                if time.monotonic() > deadline:
                    raise ClusterError(
                        f"namespace {self.name} has no {path} after {timeout:g}s: is kube-controller-manager "
                        f"running? (kubectl -n {self.name} get events)"
                    )
                time.sleep(_POLL_INTERVAL)
        self.ready = datetime.now(timezone.utc)

    def delete(self) -> None:
        """Delete it without waiting for its finalization (gone already is fine)."""
        self.deleting = datetime.now(timezone.utc)
        self.cluster.kubectl("delete", "--raw", f"/api/v1/namespaces/{self.name}", check=False)

    def is_setup(self, event: AuditEvent) -> bool:
        """Whether ``event`` belongs to this namespace's setup or teardown, not to the test: its creation,
        the polls and the controllers' work in it before it was ready; the deletion and what follows."""
        ts = event.received_at
        if ts is None:
            return False
        if self.deleting is not None and ts >= self.deleting:
            return self._concerns(event)
        if ts < self.started or (self.ready is not None and ts >= self.ready):
            return False
        if self._concerns(event):
            return True
        # The create's RequestReceived stage carries no name yet: ours, a namespace create, in the setup.
        return (event.verb == "create" and event.resource == "namespaces" and not event.name
                and event.username == self.identity)  # fmt: skip

    def _concerns(self, event: AuditEvent) -> bool:
        return event.namespace == self.name or (event.resource == "namespaces" and event.name == self.name)


@contextmanager
def fresh_namespace(
    cluster: Kubectl, *, label: str = "", timeout: float = 60.0, window: AuditWindow | None = None
) -> Iterator[FreshNamespace]:
    """A new namespace, ready for pods, deleted afterwards (without waiting for finalization; also when
    its setup fails). With ``window``, its setup is left out of that window, and the window's
    ``in_namespace()`` and ``trail()`` default to it."""
    namespace = FreshNamespace(cluster, namespace_name(label))
    if window is not None:
        window.leave_out(namespace.is_setup)
    try:
        namespace.create(timeout)
        if window is not None:
            window.namespace = namespace.name
        yield namespace
    finally:
        namespace.delete()


class NamespaceView(AssertMethods):
    """A window's events in one namespace: ``events()``, ``all()`` and the asserts, as on the window."""

    def __init__(self, window: AuditWindow, namespace: str) -> None:
        self.window = window
        self.namespace = namespace
        # What the asserts read off the events they search (the Searchable protocol), as on the window.
        self.timeout = window.timeout
        self.verbosity = window.verbosity
        self.policy: AuditPolicy | None = window.policy
        self.identity = window.identity

    def refresh(self) -> list[AuditEvent]:
        return [e for e in self.window.refresh() if e.namespace == self.namespace]

    def all(self) -> AuditEvents:
        """The window's events in the namespace, any stage, after a poll."""
        return AuditEvents([e for e in self.window.all() if e.namespace == self.namespace])

    def events(self, **filters: Any) -> AuditEvents:
        return self.all().filter(**filters)

    def __len__(self) -> int:
        return len(self.all())

    def describe(self) -> str:
        return f"{self.window.describe()}, namespace {self.namespace!r}"

    def _searched(self) -> NamespaceView:
        return self
