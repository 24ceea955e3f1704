"""The audit log as a growing, typed event stream, read incrementally: only new bytes per poll.

A partial last line (the API server is mid-write) is held back until its newline arrives, so no event
is dropped, parsed twice or mis-parsed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

from .asserts import AssertMethods
from .collection import AuditEvents
from .events import AuditEvent, parse_line, parse_lines

if TYPE_CHECKING:
    from .golden import Trail
    from .namespaces import NamespaceView
    from .policy import AuditPolicy

__all__ = ["AuditEvents", "AuditLog", "AuditWindow", "LogSource"]

#: A user name and its groups.
Identity = tuple[str, tuple[str, ...]]


class LogSource(Protocol):
    """Where the log's bytes come from: ``read_new()`` returns every byte written since its last call."""

    def read_new(self) -> bytes: ...

    def close(self) -> None:
        """Release what reading holds (a reader process in a node)."""


class AuditLog(AssertMethods):
    """Every event the API server has logged, parsed as they arrive. Thread-safe.

    ``timeout``, ``policy`` and ``identity`` are what its windows' asserts use: how long to wait for
    events (--kind-audit-timeout), the policy the API server runs with and the identity (user, groups) of
    this process's requests, so a failed assert can say what the policy does with the request looked for.
    """

    def __init__(
        self,
        source: LogSource,
        *,
        timeout: float = 10.0,
        policy: AuditPolicy | None = None,
        identity: Identity | None = None,
    ) -> None:
        self.source = source
        self.timeout = timeout
        self.policy = policy
        self.identity = identity
        self._events: list[AuditEvent] = []
        self._partial = b""
        self._lock = threading.Lock()
        #: Lines that were not an event (a write cut short by a crash), first 200 bytes of each.
        self.corrupt: list[bytes] = []

    def poll(self) -> int:
        """Read the bytes written since the last poll; return how many events they completed."""
        with self._lock:
            data = self.source.read_new()
            if not data:
                return 0
            buf = self._partial + data if self._partial else data
            cut = buf.rfind(b"\n") + 1
            self._partial = buf[cut:]
            lines = buf[:cut].split(b"\n")
            try:
                new = parse_lines(lines)
            except ValueError:
                new = self._salvage(lines)
            self._events.extend(new)
            return len(new)

    def _salvage(self, lines: list[bytes]) -> list[AuditEvent]:
        """Parse line by line; a line an API server crash cut short is followed, on the same line, by the
        next complete event: keep that one."""
        out = []
        for line in lines:
            if not line.strip():
                continue
            try:
                event = parse_line(line)
            except ValueError:
                start = line.rfind(b'{"kind":"Event"')
                event = None
                if start > 0:
                    try:
                        event = parse_line(line[start:])
                    except ValueError:
                        pass
                self.corrupt.append(line[: start if start > 0 else 200][:200])
            if event is not None:
                out.append(event)
        return out

    def __len__(self) -> int:
        return len(self._events)

    def close(self) -> None:
        """Stop reading (the events read so far stay)."""
        with self._lock:
            self.source.close()

    def snapshot(self, start: int = 0) -> list[AuditEvent]:
        """Events parsed so far from index ``start`` on, without polling."""
        with self._lock:
            return self._events[start:]

    def events(self, **filters: Any) -> AuditEvents:
        """The whole session's events matching ``filters``, after reading what is new."""
        return self.all().filter(**filters)

    def all(self) -> AuditEvents:
        """Every event of the session, any stage, after reading what is new."""
        self.poll()
        return AuditEvents(self.snapshot())

    def window(
        self,
        start: datetime | None = None,
        *,
        label: str = "window",
        foreign: Callable[[AuditEvent], bool] | None = None,
        verbosity: int = 0,
    ) -> AuditWindow:
        """A view of the events of requests received from ``start`` (default: now) on, less those
        ``foreign`` says belong to someone else; ``verbosity`` sets the detail of its failure messages."""
        return AuditWindow(self, start or datetime.now(timezone.utc), label=label, foreign=foreign,
                           verbosity=verbosity)  # fmt: skip

    def session(self, *, verbosity: int = 0) -> AuditWindow:
        """A view of every event of the session."""
        return AuditWindow(self, None, label="session", first_index=0, verbosity=verbosity)

    def _searched(self) -> AuditWindow:
        return self.session()


class AuditWindow(AssertMethods):
    """The events of requests received in [start, end): one test's view of the session's log. It carries
    what its asserts need: the log's timeout, policy and identity, and its own message verbosity."""

    def __init__(
        self,
        log: AuditLog,
        start: datetime | None,
        *,
        label: str = "window",
        first_index: int | None = None,
        foreign: Callable[[AuditEvent], bool] | None = None,
        verbosity: int = 0,
    ) -> None:
        self.log = log
        self.timeout = log.timeout
        self.policy = log.policy
        self.identity = log.identity
        self.verbosity = verbosity
        self.foreign = foreign
        self.start = start
        self.end: datetime | None = None
        self.label = label
        # Events parsed before the window opened were written before it, so they predate it.
        self._scanned = len(log) if first_index is None else first_index
        self._members: list[AuditEvent] = []
        #: The test's own namespace (the audit_namespace fixture): what ``in_namespace()`` and ``trail()``
        #: default to.
        self.namespace: str | None = None
        #: When the test function started (set by the plugin): ``trail()`` leaves out the fixtures' setup.
        self.body_start: datetime | None = None

    def close(self, end: datetime | None = None) -> None:
        """End the window: requests received from ``end`` (default: now) on no longer belong to it."""
        self.end = end or datetime.now(timezone.utc)
        self._members = [e for e in self._members if self._contains(e)]

    def leave_out(self, setup: Callable[[AuditEvent], bool]) -> None:
        """Leave the events ``setup`` picks out of this window from now on (a fixture's own requests)."""
        before = self.foreign
        self.foreign = setup if before is None else (lambda e: before(e) or setup(e))
        self._members = [e for e in self._members if not setup(e)]

    def in_namespace(self, namespace: str | None = None) -> NamespaceView:
        """This window's events in ``namespace`` (default: the test's ``audit_namespace``), with the same
        ``events()``, ``all()`` and asserts."""
        from .namespaces import NamespaceView

        name = namespace if namespace is not None else self.namespace
        if name is None:
            raise ValueError("in_namespace() needs a namespace: pass one, or request the audit_namespace fixture")
        return NamespaceView(self, name)

    def trail(self, **options: Any) -> Trail:
        """The window's golden audit trail (see ``pytest_kind_audit.golden.window_trail`` for the options):
        the test's own requests from the start of the test function, normalized."""
        from .golden import window_trail

        return window_trail(self, **options)

    def _contains(self, event: AuditEvent) -> bool:
        if self.foreign is not None and self.foreign(event):
            return False
        ts = event.received_at
        if ts is None:
            return self.start is None
        if self.start is not None and ts < self.start:
            return False
        return self.end is None or ts < self.end

    def refresh(self) -> list[AuditEvent]:
        """Poll the log and take in the new events; return the ones that joined this window."""
        self.log.poll()
        fresh = self.log.snapshot(self._scanned)
        self._scanned += len(fresh)
        new = [e for e in fresh if self._contains(e)]
        self._members.extend(new)
        return new

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self) -> Iterator[AuditEvent]:
        return iter(self.all())

    def all(self) -> AuditEvents:
        """Every event in the window, any stage, after a poll."""
        self.refresh()
        return AuditEvents(self._members)

    def events(self, **filters: Any) -> AuditEvents:
        """The window's events matching ``filters`` (``stage`` defaults to ResponseComplete)."""
        return self.all().filter(**filters)

    def describe(self) -> str:
        if self.start is None:
            return "the whole session"
        start = self.start.strftime("%H:%M:%S.%f")[:-3]
        end = self.end.strftime("%H:%M:%S.%f")[:-3] if self.end else "now"
        return f"{self.label} ({start} to {end})"

    def _searched(self) -> AuditWindow:
        return self
