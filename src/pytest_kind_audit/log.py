"""The audit log as a growing, typed event stream, read incrementally: only new bytes per poll.

A partial last line (the API server is mid-write) is held back until its newline arrives, so no event
is dropped, parsed twice or mis-parsed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol, overload

from .events import AuditEvent, parse_line, parse_lines
from .follow import FileSource
from .query import AuditQuery

if TYPE_CHECKING:
    from .policy import AuditPolicy

__all__ = ["AuditEvents", "AuditLog", "AuditWindow", "FileSource", "LogSource"]


class LogSource(Protocol):
    """Where the log's bytes come from: ``read_new()`` returns every byte written since its last call."""

    def read_new(self) -> bytes: ...


class AuditEvents(Sequence[AuditEvent]):
    """An immutable list of events with query helpers."""

    __slots__ = ("_items",)

    def __init__(self, items: Sequence[AuditEvent] = ()) -> None:
        self._items = tuple(items)

    @overload
    def __getitem__(self, index: int) -> AuditEvent: ...
    @overload
    def __getitem__(self, index: slice) -> AuditEvents: ...
    def __getitem__(self, index: int | slice) -> AuditEvent | AuditEvents:
        if isinstance(index, slice):
            return AuditEvents(self._items[index])
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[AuditEvent]:
        return iter(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AuditEvents):
            return self._items == other._items
        if isinstance(other, (list, tuple)):
            return list(self._items) == list(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._items)

    def filter(self, **filters: Any) -> AuditEvents:
        """The events matching ``filters`` (see AuditQuery; ``stage`` defaults to ResponseComplete)."""
        query = AuditQuery(**filters)
        return AuditEvents([e for e in self._items if query.matches(e)])

    def one(self) -> AuditEvent:
        if len(self._items) != 1:
            raise AssertionError(f"expected exactly one audit event, found {len(self._items)}")
        return self._items[0]

    def first(self) -> AuditEvent | None:
        return self._items[0] if self._items else None

    def summary(self) -> str:
        return "\n".join(e.summary() for e in self._items)

    def __repr__(self) -> str:
        return f"AuditEvents({len(self._items)} events)"


class AuditLog:
    """Every event the API server has logged, parsed as they arrive. Thread-safe."""

    def __init__(self, source: LogSource, *, timeout: float = 10.0) -> None:
        self.source = source
        #: How long asserts on this log wait for events when not told (--kind-audit-timeout).
        self.timeout = timeout
        self._events: list[AuditEvent] = []
        self._partial = b""
        self._lock = threading.Lock()
        #: The policy the API server runs with and the identity of this process's requests (user, groups),
        #: so a failed assert can say what the policy does with the request it looked for.
        self.policy: AuditPolicy | None = None
        self.identity: tuple[str, tuple[str, ...]] | None = None
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
    ) -> AuditWindow:
        """A view of the events of requests received from ``start`` (default: now) on, less those
        ``foreign`` says belong to someone else."""
        return AuditWindow(self, start or datetime.now(timezone.utc), label=label, foreign=foreign)

    def session(self) -> AuditWindow:
        """A view of every event of the session."""
        return AuditWindow(self, None, label="session", first_index=0)

    def assert_audited(
        self,
        *,
        count: int | None = None,
        at_least: int | None = None,
        timeout: float | None = None,
        **filters: Any,
    ) -> AuditEvents:
        __tracebackhide__ = True
        return self.session().assert_audited(count=count, at_least=at_least, timeout=timeout, **filters)

    def assert_not_audited(self, *, timeout: float = 0.0, **filters: Any) -> None:
        __tracebackhide__ = True
        self.session().assert_not_audited(timeout=timeout, **filters)


class AuditWindow:
    """The events of requests received in [start, end): one test's view of the session's log."""

    def __init__(
        self,
        log: AuditLog,
        start: datetime | None,
        *,
        label: str = "window",
        first_index: int | None = None,
        foreign: Callable[[AuditEvent], bool] | None = None,
    ) -> None:
        self.log = log
        self.foreign = foreign
        self.start = start
        self.end: datetime | None = None
        self.label = label
        # Events parsed before the window opened were written before it, so they predate it.
        self._scanned = len(log) if first_index is None else first_index
        self._members: list[AuditEvent] = []

    def close(self, end: datetime | None = None) -> None:
        """End the window: requests received from ``end`` (default: now) on no longer belong to it."""
        self.end = end or datetime.now(timezone.utc)
        self._members = [e for e in self._members if self._contains(e)]

    def _contains(self, event: AuditEvent) -> bool:
        if self.foreign is not None and self.foreign(event):
            return False
        ts = event.request_received_timestamp or event.stage_timestamp
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

    def assert_audited(
        self,
        *,
        count: int | None = None,
        at_least: int | None = None,
        timeout: float | None = None,
        **filters: Any,
    ) -> AuditEvents:
        """Wait until the expected events are in the window; AssertionError with the closest events if not."""
        __tracebackhide__ = True
        from .asserts import wait_for_events

        return wait_for_events(self, AuditQuery(**filters), count=count, at_least=at_least, timeout=timeout)

    def assert_not_audited(self, *, timeout: float = 0.0, **filters: Any) -> None:
        """No event in the window matches (watching for ``timeout`` seconds, default: one look now)."""
        __tracebackhide__ = True
        from .asserts import check_absent

        check_absent(self, AuditQuery(**filters), timeout=timeout)
